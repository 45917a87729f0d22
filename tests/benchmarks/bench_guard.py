"""Benchmark: `incident guard check` on a commit of 1,000 changed files.

Baseline: `git diff --cached` alone (listing and diffing the same staged files), in
the same run. Prints both timings and the ratio. Run by hand:

    python tests/benchmarks/bench_guard.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.helpers.gitrepo import GitRepo

FILES = 1_000
RUNS = 5


def build(root: Path) -> GitRepo:
    """A repository whose index holds 1,000 modified source files, no key."""
    repo = GitRepo.init(root / "bench")
    body = "".join(f"def handler_{i}(request):\n    return {i}\n" for i in range(60))
    repo.commit({f"src/module_{n:04}.py": body for n in range(FILES)}, "base")
    repo.write({f"src/module_{n:04}.py": f"{body}# change {n}\n"
                for n in range(FILES)})
    return repo


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Best-of-RUNS wall time of command, checking it ran."""
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        result = subprocess.run(command, cwd=cwd, capture_output=True, check=False)
        samples.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise SystemExit(f"{command} exited {result.returncode}: {result.stderr!r}")
    return min(samples), statistics.median(samples)


def main() -> None:
    with tempfile.TemporaryDirectory() as temp:
        home = Path(temp) / "home"
        home.mkdir()
        os.environ.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1",
                          GIT_CONFIG_GLOBAL=str(home / ".gitconfig"))
        repo = build(Path(temp))
        staged = repo.git("diff", "--cached", "--name-only").count("\n") + 1
        assert staged == FILES, staged

        diff_best, diff_median = timed(["git", "diff", "--cached"], repo.path)
        guard_best, guard_median = timed(
            [sys.executable, "-m", "incident", "guard", "check", "-q"], repo.path)
        # The part of the guard's time that is Python start-up and imports.
        start_best, _ = timed([sys.executable, "-c", "import incident.cli.guard"],
                              repo.path)

    print(f"{FILES} staged files, best of {RUNS} runs (median in brackets)")
    print(f"  git diff --cached     {diff_best * 1000:8.1f} ms "
          f"({diff_median * 1000:.1f})")
    print(f"  incident guard check  {guard_best * 1000:8.1f} ms "
          f"({guard_median * 1000:.1f})")
    print(f"    of which start-up   {start_best * 1000:8.1f} ms (Python + imports)")
    print(f"  ratio guard / diff    {guard_best / diff_best:8.2f}x")


if __name__ == "__main__":
    main()
