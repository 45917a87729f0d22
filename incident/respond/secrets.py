"""Get the secret values back after a crash: they are never written to the journal.

The journal holds fingerprints only. A resumed response rescans the repository; a
key that an in-place purge already removed is read back from the purge's backup
bundle, which is the one place the old history still lives.
"""

from __future__ import annotations

import logging
from pathlib import Path

from incident.errors import RefusedError
from incident.history import Finding, ScanReport, scan_repository
from incident.history.bundle import scan_bundle
from incident.journal import Journal

logger = logging.getLogger(__name__)


def recover_findings(repo: Path, fingerprints: list[str], journal: Journal,
                     report: ScanReport | None = None,
                     strict: bool = True) -> dict[str, Finding]:
    """The findings (secret values included) for each fingerprint the journal names.

    Args:
        report: a scan of repo already made (saves scanning it again).
        strict: raise when a key cannot be found; otherwise leave it out.

    Raises:
        RefusedError: (strict) a key is neither in the repository nor in any backup
            bundle the journal records; the step that needs it cannot run.
    """
    found = _by_fingerprint(report or scan_repository(repo), fingerprints)
    missing = [fp for fp in fingerprints if fp not in found]
    for event in reversed(journal.find("purge", "backup-done")):
        if not missing:
            break
        bundle = Path(event.data.get("path", ""))
        if not bundle.is_file():
            continue
        logger.info("reading %d key(s) back from the backup %s", len(missing), bundle)
        found.update(_by_fingerprint(scan_bundle(bundle), missing))
        missing = [fp for fp in fingerprints if fp not in found]
    if missing and strict:
        raise RefusedError(
            f"{len(missing)} key(s) recorded by this incident are no longer in the "
            "repository or any backup it recorded (first: sha256:"
            f"{missing[0][:12]})",
            "Run a new response on the repository: incident respond REPO",
        )
    return found


def _by_fingerprint(report: ScanReport, wanted: list[str]) -> dict[str, Finding]:
    return {f.fingerprint: f for f in report.findings if f.fingerprint in wanted}


def recorded_fingerprints(journal: Journal) -> list[str]:
    """Every key fingerprint the incident's scan or roll recorded, in order."""
    seen: dict[str, None] = {}
    for event in journal.events():
        if event.event == "finding" and event.data.get("fingerprint"):
            seen[str(event.data["fingerprint"])] = None
        elif event.event == "roll-started":
            seen.update(dict.fromkeys(map(str, event.data.get("keys") or [])))
    return list(seen)
