"""Benchmark ``incident scan`` against the floor: reading every object once with git.

Usage: python tests/benchmarks/bench_scan.py [REPO]
  (default: a generated repository of 20,000 commits and 200 MB of content, cached
  in $INCIDENT_BENCH_DIR or /tmp/incident-bench)

Prints, from one run: our wall time and peak memory, the time of
``git cat-file --batch-all-objects --batch`` on the same repository (the floor), the
ratio, and, if gitleaks is on PATH, ``gitleaks git`` and its ratio.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks.generate import generate, planted_keys

SCAN = """
import json, resource, sys, time
from pathlib import Path
from incident.history import scan_repository
started = time.perf_counter()
report = scan_repository(Path(sys.argv[1]))
elapsed = time.perf_counter() - started
print(json.dumps({
    "seconds": elapsed,
    "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "findings": [f.fingerprint for f in report.findings],
    "objects": report.stats.objects,
    "bytes": report.stats.bytes,
    "complete": not report.incomplete,
}))
"""


def timed(command: list[str], **kwargs: object) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=False, **kwargs)  # type: ignore[call-overload]
    return time.perf_counter() - started


def best_of(runs: int, command: list[str], **kwargs: object) -> float:
    return min(timed(command, **kwargs) for _ in range(runs))


def main() -> int:
    if len(sys.argv) > 1:
        repo = Path(sys.argv[1]).resolve()
    else:
        root = Path(os.environ.get("INCIDENT_BENCH_DIR", "/tmp/incident-bench"))
        repo = root / "scan-20k"
        if not (repo / ".git").exists():
            print(f"generating {repo} (20,000 commits, 200 MB) ...", file=sys.stderr)
            shutil.rmtree(repo, ignore_errors=True)
            repo.parent.mkdir(parents=True, exist_ok=True)
            generate(repo)

    devnull = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    # Warm the page cache once so neither side pays for the first read from disk.
    timed(
        ["git", "-C", str(repo), "cat-file", "--batch-all-objects", "--batch"],
        **devnull,
    )
    floor = best_of(
        3,
        ["git", "-C", str(repo), "cat-file", "--batch-all-objects", "--batch"],
        **devnull,
    )

    runs = []
    for _ in range(3):
        result = subprocess.run(
            [sys.executable, "-c", SCAN, str(repo)],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(result.stdout))
    ours = min(runs, key=lambda r: r["seconds"])

    print(f"repository        {repo}")
    print(
        f"objects           {ours['objects']:,} "
        f"({ours['bytes'] / 1e6:,.0f} MB of blobs)"
    )
    print(f"findings          {len(ours['findings'])}  complete={ours['complete']}")
    print(f"floor (cat-file)  {floor:8.2f} s")
    print(
        f"incident scan     {ours['seconds']:8.2f} s   peak memory "
        f"{ours['peak_kib'] / 1024:,.0f} MiB"
    )
    print(f"ratio             {ours['seconds'] / floor:8.2f} x the floor (goal <= 2.0)")

    if len(sys.argv) == 1:
        expected = len(planted_keys())
        print(f"planted keys      {expected} (found {len(ours['findings'])})")

    gitleaks = shutil.which("gitleaks")
    if gitleaks:
        seconds = best_of(
            1,
            [
                gitleaks,
                "git",
                str(repo),
                "--no-banner",
                "--exit-code",
                "0",
                "--report-path",
                os.devnull,
            ],
            **devnull,
        )
        print(
            f"gitleaks git      {seconds:8.2f} s   ratio {seconds / floor:.2f} x the "
            "floor"
        )
    else:
        print("gitleaks          not on PATH: skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
