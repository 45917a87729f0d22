"""Benchmark: ``purge_repository`` against a bare ``git filter-repo --replace-text``.

Run by hand (not collected by pytest):

    python tests/benchmarks/bench_purge.py [--commits 20000]

Generates a repository of --commits commits with ``git fast-import`` (a key committed
early, removed later, on a branch and in a tag message), makes two identical copies,
and times:

* baseline: ``git filter-repo --replace-text FILE`` on one mirror copy (rewrite and
  filter-repo's own repack; nothing else);
* ours: ``purge_repository`` on the other copy: scan for the keys, bundle backup,
  fresh mirror, rewrite, cleanup, full verification.

Goal (issue 4): ours / baseline <= 3.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from incident.journal import Journal
from incident.rewrite import PurgeOptions, purge_repository
from tests.helpers.gitrepo import fake_key

FILES = 200


def fast_import_stream(commits: int, key: str) -> bytes:
    """A linear history with a leak at 1 %, its removal at 2 %, a branch and tags."""
    out: list[bytes] = []
    leak, fix = max(2, commits // 100), max(3, commits // 50)
    stamp = 1_704_067_200
    for number in range(1, commits + 1):
        path = f"src/module_{number % FILES:03d}.py"
        body = f"# revision {number}\nVALUE = {number * 7919 % 104729}\n"
        changes = [f"M 100644 inline {path}\ndata {len(body)}\n{body}"]
        if number == leak:
            config = f"STRIPE_SECRET_KEY={key}\n"
            changes.append(f"M 100644 inline config/.env\ndata {len(config)}\n{config}")
        if number == fix:
            config = "STRIPE_SECRET_KEY=${STRIPE_SECRET_KEY}\n"
            changes.append(f"M 100644 inline config/.env\ndata {len(config)}\n{config}")
        message = f"Change {number}\n"
        when = stamp + number * 60
        out.append(
            f"commit refs/heads/main\nmark :{number}\n"
            f"author Dana Dev <dana@example.com> {when} +0000\n"
            f"committer Dana Dev <dana@example.com> {when} +0000\n"
            f"data {len(message)}\n{message}"
            + ("" if number == 1 else f"from :{number - 1}\n")
            + "".join(changes)
            + "\n"
        )
    out.append(f"reset refs/heads/leaky\nfrom :{leak}\n\n")
    tag_message = f"Release with config ({key})\n"
    out.append(
        f"tag v1.0\nfrom :{fix}\ntagger Dana Dev <dana@example.com> {stamp} +0000\n"
        f"data {len(tag_message)}\n{tag_message}\n"
    )
    return "".join(out).encode()


def generate(path: Path, commits: int, key: str) -> None:
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    subprocess.run(
        ["git", "-C", str(path), "fast-import", "--quiet"],
        input=fast_import_stream(commits, key),
        check=True,
    )
    subprocess.run(["git", "-C", str(path), "gc", "--quiet"], check=True)


def mirror(source: Path, target: Path) -> None:
    subprocess.run(
        ["git", "clone", "-q", "--mirror", "--no-local", str(source), str(target)],
        check=True,
    )


def time_baseline(repo: Path, key: str, scratch: Path) -> float:
    """Bare filter-repo with a replace-text file (0600, deleted right after)."""
    expressions = scratch / "replace.txt"
    fd = os.open(expressions, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{key}==>***STRIPE-KEY-REMOVED***\n")
    try:
        started = time.perf_counter()
        subprocess.run(
            [
                "git",
                "filter-repo",
                "--force",
                "--quiet",
                "--replace-text",
                str(expressions),
                "--replace-message",
                str(expressions),
            ],
            cwd=repo,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return time.perf_counter() - started
    finally:
        expressions.unlink()


def time_ours(repo: Path, workdir: Path) -> tuple[float, int, bool]:
    """Run the purge with a journal, and print each step's time from its events."""
    journal = Journal.create(workdir.parent / "incidents", "bench")
    started = time.perf_counter()
    result = purge_repository(repo, PurgeOptions(workdir=workdir), journal)
    elapsed = time.perf_counter() - started
    clean = result.verification is not None and result.verification.clean
    times = {
        e.event: datetime.fromisoformat(e.time.replace("Z", "+00:00"))
        for e in journal.events()
    }
    for step in ("backup", "rewrite", "verify"):
        seconds = (times[f"{step}-done"] - times[f"{step}-started"]).total_seconds()
        print(f"  {step:<8} {seconds:8.2f} s")
    return elapsed, result.commits_rewritten, clean


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=20_000)
    args = parser.parse_args()
    key = fake_key(seed="bench-purge")
    scratch = Path(tempfile.mkdtemp(prefix="bench-purge-"))
    try:
        started = time.perf_counter()
        generate(scratch / "generated.git", args.commits, key)
        print(
            f"generated {args.commits} commits in {time.perf_counter() - started:.1f} s"
        )
        mirror(scratch / "generated.git", scratch / "baseline.git")
        mirror(scratch / "generated.git", scratch / "ours.git")

        baseline = time_baseline(scratch / "baseline.git", key, scratch)
        ours, rewritten, clean = time_ours(scratch / "ours.git", scratch / "work")

        print(f"bare git filter-repo --replace-text: {baseline:8.2f} s")
        print(
            f"incident purge (scan, backup, mirror, rewrite, cleanup, verify): "
            f"{ours:8.2f} s  ({rewritten} commits rewritten, "
            f"{'verified clean' if clean else 'NOT CLEAN'})"
        )
        ratio = ours / baseline
        print(f"ratio ours / baseline: {ratio:.2f}x (goal <= 3.00x)")
        return 0 if clean and ratio <= 3.0 else 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
