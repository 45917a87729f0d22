"""The audit's history checks: the whole-history scan, and what it could not read.

Submodules and Git LFS content that is not present locally are unknowns, never
passes: a publication exposes them too, and nothing here says they are clean.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from incident.allowlist import Allowlist
from incident.audit.model import Check, Item, Status, sort_items, worst
from incident.audit.tree import CurrentTree
from incident.errors import IncidentError, NotARepositoryError
from incident.history.model import ScanReport

logger = logging.getLogger(__name__)

ScanFunction = Callable[[Path], ScanReport]


def scan_history(repo: Path, scan: ScanFunction) -> ScanReport | IncidentError:
    """Run the history scan; a failure becomes an unknown, a bad path an error.

    Raises:
        NotARepositoryError: repo is not a repository.
    """
    try:
        return scan(repo)
    except NotARepositoryError:
        raise
    except IncidentError as exc:
        logger.warning("history scan failed: %s", exc.message)
        return exc


def check_history(repo: Path, result: ScanReport | IncidentError,
                  allowlist: Allowlist) -> Check:
    """Any secret in any ref or object of the whole history is a no-go."""
    check = Check(
        id="history",
        title="Whole history: every ref and object",
        status=Status.PASS,
        summary="",
        why="Publishing a repository publishes every commit, tag and reachable "
            "object: a key removed in a later commit is still readable.",
    )
    if isinstance(result, IncidentError):
        check.status = Status.UNKNOWN
        check.summary = f"The history scan failed: {result.message}"
        check.fix = result.hint or "Run `incident scan` to see the error."
        return check
    report = result

    for finding in report.findings:
        reason = allowlist.reason_for(finding.fingerprint)
        first = finding.locations[0] if finding.locations else None
        where = (f"{first.shown_path or first.source}:{first.line} @ "
                 f"{(first.commit or first.object_id)[:12]}") if first else "?"
        detail = (f"{finding.redacted} ({finding.mode} {finding.kind}, fingerprint "
                  f"{finding.fingerprint[:12]}), in {len(finding.locations)} "
                  "place(s), refs: "
                  f"{', '.join(finding.shown_refs) or 'unreachable only'}")
        status = Status.PASS if reason else Status.FAIL
        check.items.append(Item(status, where, detail + (f": allowlisted, {reason}"
                                                         if reason else "")))
    for finding in report.ignored:
        if finding.ignored and finding.ignored.startswith("allowlisted"):
            check.items.append(Item(Status.PASS, finding.redacted,
                                    f"fingerprint {finding.fingerprint[:12]}: "
                                    f"{finding.ignored}"))
    for gap in report.unscanned:
        if gap.makes_incomplete:
            check.items.append(Item(Status.UNKNOWN, gap.shown_path or gap.object_id or
                                    gap.kind, f"{gap.kind}: {gap.detail}"))

    check.items = sort_items(check.items)
    check.status = worst([item.status for item in check.items])
    failing = len([i for i in check.items if i.status is Status.FAIL])
    if failing:
        check.summary = f"{failing} secret key(s) in the history."
        check.fix = ("Roll every key, then rewrite history and force-push: "
                     f"incident respond {repo}")
    elif check.status is Status.UNKNOWN:
        check.summary = "Part of the history could not be read."
        check.fix = "Fetch the missing objects (git fetch --unshallow / " \
                    "git fsck), then audit again."
    else:
        check.summary = (f"No secret key in {report.stats.objects} objects of "
                         "history.")
    return check


def check_unscanned(result: ScanReport | IncidentError, tree: CurrentTree) -> Check:
    """Submodules and absent LFS content: unknowns, never passes."""
    items: dict[str, Item] = {}
    gaps = result.unscanned if isinstance(result, ScanReport) else []
    # The current tree names a submodule by its full path; prefer that entry.
    current = {commit for _, commit in tree.submodules}
    for gap in gaps:
        if gap.makes_incomplete:
            continue  # reported by the history check
        if gap.kind == "submodule" and gap.object_id in current:
            continue
        where = gap.shown_path or gap.object_id or gap.kind
        items[where] = Item(Status.UNKNOWN, where, f"{gap.kind}: {gap.detail}")
    for path, commit in tree.submodules:
        items.setdefault(path, Item(
            Status.UNKNOWN, path,
            f"submodule at {commit[:12]}: its content lives in another repository "
            f"and was not scanned; audit it too: incident audit {path}"))
    for path, oid in tree.lfs_missing:
        items.setdefault(path, Item(
            Status.UNKNOWN, path,
            f"Git LFS object {oid[:12]} is not present locally, so it was not "
            "scanned; run `git lfs fetch --all`, then audit again"))
    check = Check(
        id="unscanned",
        title="Content the scan could not read (submodules, Git LFS)",
        status=Status.UNKNOWN if items else Status.PASS,
        summary=(f"{len(items)} place(s) could not be read." if items
                 else "No submodule or missing Git LFS content."),
        why="A publication exposes them too, and nothing here says they are clean.",
        fix=("Audit each submodule's repository, and fetch LFS content "
             "(git lfs fetch --all) before auditing again." if items else ""),
        items=sort_items(list(items.values())),
    )
    return check
