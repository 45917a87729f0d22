"""Prove a rewritten repository clean: two independent checks, both must pass.

1. A direct byte search of every object git holds (reachable or not, loose or
   packed), and of every file in the git directory outside ``objects/`` (packed-refs,
   reflogs, filter-repo's metadata), for each secret in each encoded form the rewrite
   replaces. This does not depend on the scanner's decoders.
2. A full ``scan_repository`` of the rewritten repository, which also looks inside
   gzip streams, zip members and base64 runs the byte search cannot see through.
"""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from incident.errors import GitError
from incident.journal import utc_now
from incident.redact import fingerprint, redact
from incident.rewrite.encodings import encoded_needles
from incident.rewrite.gitcmd import git_dir, git_env

logger = logging.getLogger(__name__)

_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class Remnant:
    """One place a purged secret is still stored."""

    redacted: str
    fingerprint: str
    where: str
    form: str
    check: str  # "bytes" or "scan"

    def describe(self) -> str:
        return f"{self.redacted} ({self.form}) in {self.where} [{self.check}]"


@dataclass(frozen=True)
class VerifyResult:
    """The verdict on one rewritten repository.

    Attributes:
        clean: True only when both checks found nothing and the scan was complete.
        remnants: every place a purged secret remains.
        incomplete: the scan could not read part of the history (not clean).
        objects_scanned: objects the scanner read.
        checked_at: when the check finished (UTC, ISO 8601).
        seconds: how long both checks took.
    """

    clean: bool
    remnants: list[Remnant] = field(default_factory=list)
    incomplete: bool = False
    objects_scanned: int = 0
    checked_at: str = ""
    seconds: float = 0.0


def verify_clean(repo: Path, secrets: list[str]) -> VerifyResult:
    """Check every object and metadata file of repo for the purged secrets."""
    from incident.history import scan_repository

    started = time.monotonic()
    remnants = search_bytes(repo, secrets)
    report = scan_repository(repo)
    purged = {fingerprint(s) for s in secrets}
    for finding in report.findings:
        if finding.fingerprint not in purged:
            continue
        for location in finding.locations:
            where = location.path or location.source
            remnants.append(Remnant(
                redacted=finding.redacted,
                fingerprint=finding.fingerprint,
                where=f"{location.source} {location.object_id[:12]} {where}",
                form=location.encoding,
                check="scan",
            ))
    incomplete = report.incomplete
    return VerifyResult(
        clean=not remnants and not incomplete,
        remnants=remnants,
        incomplete=incomplete,
        objects_scanned=report.stats.objects,
        checked_at=utc_now(),
        seconds=time.monotonic() - started,
    )


def search_bytes(repo: Path, secrets: list[str]) -> list[Remnant]:
    """Search every object's content and every metadata file for every form."""
    needles = [
        (secret, form, needle)
        for secret in secrets
        for form, values in encoded_needles(secret).items()
        for needle in values
    ]
    found: list[Remnant] = []
    for secret, form in _search_object_stream(repo, needles):
        found.append(Remnant(redact(secret), fingerprint(secret),
                             "an object of the repository (git cat-file)", form,
                             "bytes"))
    directory = git_dir(repo)
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or "objects" in path.relative_to(directory).parts[:1]:
            continue
        data = path.read_bytes()
        for secret, form, needle in needles:
            if needle in data:
                found.append(Remnant(redact(secret), fingerprint(secret), str(path),
                                     form, "bytes"))
    return found


def _search_object_stream(
    repo: Path, needles: list[tuple[str, str, bytes]]
) -> set[tuple[str, str]]:
    """Search git's own dump of all objects in large chunks, overlapping edges."""
    overlap = max(len(n) for _, _, n in needles)
    hits: set[tuple[str, str]] = set()
    process = subprocess.Popen(
        ["git", "-C", str(repo), "cat-file", "--batch-all-objects", "--batch",
         "--unordered"],
        stdout=subprocess.PIPE, env=git_env(),
    )
    assert process.stdout is not None
    tail = b""
    while True:
        chunk = process.stdout.read(_CHUNK)
        if not chunk:
            break
        window = tail + chunk
        for secret, form, needle in needles:
            if needle in window:
                hits.add((secret, form))
        tail = window[-overlap:]
    if process.wait() != 0:
        raise GitError(f"git cat-file could not read every object in {repo}",
                       f"Check it with: git -C {repo} fsck --full; the backup is "
                       "kept.")
    return hits
