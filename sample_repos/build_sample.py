"""Build the sample incident repository: ``python sample_repos/build_sample.py DIR``.

The builder itself lives in the package (incident.sample) so that ``incident demo``
can use it after a plain ``pip install``; this script is the stand-alone entry.
"""

from __future__ import annotations

import sys
from pathlib import Path

from incident.redact import fingerprint, redact
from incident.sample import build_sample_repo


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python sample_repos/build_sample.py DIR", file=sys.stderr)
        return 2
    sample = build_sample_repo(Path(sys.argv[1]))
    print(f"Built the sample repository at {sample.path}")
    for role, secret in sample.secrets.items():
        print(f"  {role}: {redact(secret)} sha256:{fingerprint(secret)[:12]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
