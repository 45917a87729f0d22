"""Scan a repository's whole history and place what was found."""

from incident.history.model import (
    CommitInfo,
    Finding,
    Location,
    ScanReport,
    ScanStats,
    Unscanned,
)
from incident.history.repository import Repository, open_repository, run_git
from incident.history.scan import scan_repository

__all__ = [
    "CommitInfo",
    "Finding",
    "Location",
    "Repository",
    "ScanReport",
    "ScanStats",
    "Unscanned",
    "open_repository",
    "run_git",
    "scan_repository",
]
