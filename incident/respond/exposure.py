"""How long each ref carried a key, and when it left the branch tips.

Recorded at detection time, before any rewrite, because afterwards the history that
holds the answers is gone from the repository (it lives on only in the backup).
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from incident.detect import scan_bytes
from incident.history import Finding, Repository, run_git
from incident.history.repository import git_env

logger = logging.getLogger(__name__)

# Bounds the walk down one branch looking for the commit that removed a key; a
# branch with more later commits touching the file gets "unknown", never a guess.
MAX_COMMITS_PER_PATH = 500


@dataclass(frozen=True)
class RefExposure:
    """A ref that carried the key, and since when (the earliest commit it holds)."""

    name: str
    since: str | None
    commit: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "since": self.since, "commit": self.commit}


@dataclass(frozen=True)
class TipDeparture:
    """The commit that took the key off a branch that still exists."""

    ref: str
    commit: str | None
    time: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "commit": self.commit, "time": self.time}


def ref_exposure(repo: Repository, finding: Finding) -> list[RefExposure]:
    """Every ref that carried the finding, with the first commit of its that did."""
    commits = sorted({loc.commit for loc in finding.locations if loc.commit})
    dates = _committer_dates(repo, commits)
    earliest: dict[str, tuple[str, str]] = {}
    for commit in commits:
        output = run_git(repo, "for-each-ref", "--format=%(refname)",
                         f"--contains={commit}", check=False)
        for ref in output.decode("utf-8", "surrogateescape").split():
            stamp = dates.get(commit, "")
            if ref not in earliest or stamp < earliest[ref][0]:
                earliest[ref] = (stamp, commit)
    refs = []
    for name in finding.refs:
        stamp, commit = earliest.get(name, ("", ""))
        refs.append(RefExposure(name, stamp or None, commit or None))
    return refs


def tip_departures(repo: Repository, finding: Finding) -> list[TipDeparture]:
    """For each branch that carried the key but no longer has it at its tip, the
    commit that removed it (the latest removal over all the places it was)."""
    gone = [ref for ref in finding.refs
            if ref.startswith(("refs/heads/", "refs/remotes/"))
            and ref not in finding.present_at_tips]
    files = [loc for loc in finding.locations
             if loc.source == "file" and loc.commit and loc.path]
    departures = []
    for ref in gone:
        removals: list[tuple[str, str]] = []
        unknown = False
        for loc in files:
            assert loc.commit is not None and loc.path is not None
            if not _is_ancestor(repo, loc.commit, ref):
                continue
            found = _removal(repo, finding, loc.commit, loc.path, ref)
            if found is None:
                unknown = True
            else:
                removals.append(found)
        if unknown or not removals:
            departures.append(TipDeparture(ref, None, None))
            continue
        time, commit = max(removals)
        departures.append(TipDeparture(ref, commit, time))
    return departures


def _removal(repo: Repository, finding: Finding, start: str, path: str,
             ref: str) -> tuple[str, str] | None:
    """The first commit after start on ref whose version of path lacks the key."""
    output = run_git(repo, "log", "--format=%H %cI", "--reverse", "--ancestry-path",
                     f"--max-count={MAX_COMMITS_PER_PATH}", f"{start}..{ref}", "--",
                     path, check=False)
    for line in output.decode().splitlines():
        commit, _, stamp = line.partition(" ")
        blob = run_git(repo, "cat-file", "blob", f"{commit}:{path}", check=False)
        if not blob or not any(m.fingerprint == finding.fingerprint
                               for m in scan_bytes(blob)):
            return _utc(stamp), commit
    return None


def _is_ancestor(repo: Repository, commit: str, ref: str) -> bool:
    result = subprocess.run(
        ["git", "-C", str(repo.path), "merge-base", "--is-ancestor", commit, ref],
        capture_output=True, env=git_env(), check=False)
    return result.returncode == 0


def _committer_dates(repo: Repository, commits: list[str]) -> dict[str, str]:
    if not commits:
        return {}
    output = run_git(repo, "log", "--no-walk=unsorted", "--format=%H %cI", *commits,
                     check=False)
    dates = {}
    for line in output.decode().splitlines():
        sha, _, stamp = line.partition(" ")
        dates[sha] = _utc(stamp)
    return dates


def _utc(stamp: str) -> str:
    """git's strict ISO date, as UTC with a Z."""
    try:
        return datetime.fromisoformat(stamp).astimezone(UTC).isoformat().replace(
            "+00:00", "Z")
    except ValueError:
        return stamp
