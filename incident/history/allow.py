"""Apply the repository's committed allowlist (known test fixtures) to findings."""

from __future__ import annotations

import logging

from incident.history.model import Finding
from incident.history.repository import Repository

logger = logging.getLogger(__name__)


def apply_allowlist(repo: Repository, findings: list[Finding]) -> None:
    """Mark findings the allowlist names by fingerprint as ignored, with the reason."""
    try:
        from incident.allowlist import load_allowlist
    except ImportError:  # pragma: no cover - the module ships with the package
        return
    allowlist = load_allowlist(repo.work_tree or repo.path)
    for finding in findings:
        reason = allowlist.reason_for(finding.fingerprint)
        if reason and not finding.ignored:
            finding.ignored = f"allowlisted: {reason}"
            logger.info("allowlisted %s (%s)", finding.redacted, reason)
