"""Scan a git bundle (a purge's backup): the one place old history still lives."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from incident.history.model import ScanReport
from incident.history.repository import run_git
from incident.history.scan import scan_repository


def scan_bundle(bundle: Path) -> ScanReport:
    """Scan every object of bundle through a private, temporary mirror."""
    # The copy holds the keys: private folder, removed whatever happens.
    scratch = Path(tempfile.mkdtemp(prefix="incident-bundle-"))
    try:
        mirror = scratch / "backup.git"
        run_git(scratch, "clone", "--mirror", "-q", str(bundle), str(mirror))
        return scan_repository(mirror)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
