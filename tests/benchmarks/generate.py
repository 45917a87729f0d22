"""Generate a large synthetic repository for benchmarks, fast, with git fast-import.

Shared by the scan and purge benchmarks. Content is pseudo-random text (words, code
and base64-looking lines) so that zlib and delta compression behave as on real
code, with a few planted fake keys so that placement is exercised too.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from incident.sample import fake_secret

_VOCABULARY = (
    "charge customer invoice payment refund intent account balance webhook event "
    "subscription price product session checkout dispute payout transfer fee tax "
    "def return import class self none true false if else for while try except "
    "with yield lambda async await config settings logger request response error"
)
WORDS = tuple(_VOCABULARY.split())


def planted_keys() -> list[str]:
    """The fake keys the generator plants (known to the benchmark for checking)."""
    return [fake_secret("sk_" + "live_", f"bench-{n}") for n in range(5)]


def _text(rng: random.Random, size: int) -> bytes:
    lines = []
    total = 0
    while total < size:
        kind = rng.random()
        if kind < 0.7:
            line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14)))
        elif kind < 0.9:
            line = (
                f"    {rng.choice(WORDS)}_{rng.randint(0, 9999)} = {rng.random():.6f}"
            )
        else:
            line = "".join(
                rng.choice(
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                )
                for _ in range(76)
            )
        lines.append(line)
        total += len(line) + 1
    return ("\n".join(lines) + "\n").encode()


def generate(
    path: Path,
    commits: int = 20_000,
    megabytes: int = 200,
    files: int = 2_000,
    seed: int = 7,
) -> Path:
    """Create a repository at path with the given number of commits and content size."""
    rng = random.Random(seed)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    per_commit = megabytes * 1024 * 1024 // commits
    keys = planted_keys()
    plant_at = {commits // (len(keys) + 1) * (n + 1): key for n, key in enumerate(keys)}
    importer = subprocess.Popen(
        ["git", "-C", str(path), "fast-import", "--quiet"], stdin=subprocess.PIPE
    )
    assert importer.stdin is not None
    write = importer.stdin.write
    when = 1_600_000_000
    for number in range(1, commits + 1):
        when += 600
        message = f"change {number}\n".encode()
        write(b"commit refs/heads/main\n")
        write(f"mark :{number}\n".encode())
        write(f"committer Bench <bench@example.com> {when} +0000\n".encode())
        write(f"data {len(message)}\n".encode() + message)
        if number > 1:
            write(f"from :{number - 1}\n".encode())
        body = _text(rng, per_commit)
        if number in plant_at:
            body += f"STRIPE_KEY = '{plant_at[number]}'\n".encode()
        name = f"src/mod{rng.randrange(files // 50)}/file{rng.randrange(files)}.py"
        write(f"M 100644 inline {name}\n".encode())
        write(f"data {len(body)}\n".encode() + body + b"\n")
    importer.stdin.close()
    if importer.wait() != 0:
        raise RuntimeError("git fast-import failed")
    subprocess.run(
        ["git", "-C", str(path), "repack", "-adq", "--window=10"], check=True
    )
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1])
    commits = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    megabytes = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    generate(target, commits, megabytes)
    print(target)
