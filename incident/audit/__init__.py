"""Go / no-go before publishing a repository or closing an incident."""

from __future__ import annotations

from pathlib import Path

from incident.allowlist import load_allowlist
from incident.audit.history_checks import (
    ScanFunction,
    check_history,
    check_unscanned,
    scan_history,
)
from incident.audit.model import AuditReport, Check, Item, Status, Verdict
from incident.audit.tree import read_current_tree
from incident.audit.tree_checks import (
    check_clients,
    check_keys_in,
    check_secret_files,
    find_tree_keys,
)
from incident.guard.gitio import locate_repository
from incident.history.model import ScanReport
from incident.journal import utc_now

__all__ = ["AuditReport", "Check", "Item", "Status", "Verdict", "run_audit"]


def _default_scan(repo: Path) -> ScanReport:
    # Imported here so that `incident guard` never loads the history scanner.
    from incident.history import scan_repository

    return scan_repository(repo, show_ignored=True)


def run_audit(repo: Path, *, scan: ScanFunction | None = None) -> AuditReport:
    """Audit repo: its whole history, then how the current tree handles keys.

    Args:
        repo: a work tree (any folder inside it) or a bare repository.
        scan: the history scan to use; ``incident.history.scan_repository`` by
            default (tests may hand in another).

    Raises:
        NotARepositoryError: repo is not a git repository.
        UsageError: the allowlist is malformed.
    """
    paths = locate_repository(Path(repo))
    allowlist = load_allowlist(Path(repo))
    history = scan_history(Path(repo), scan or _default_scan)
    tree = read_current_tree(paths)
    keys = find_tree_keys(tree)

    report = AuditReport(repository=str(paths.work_tree or paths.git_dir),
                         audited_at=utc_now())
    report.checks = [
        check_history(Path(repo), history, allowlist),
        check_unscanned(history, tree),
        check_keys_in("source", keys, allowlist, tree),
        check_clients(tree),
        check_secret_files(paths, tree, keys, allowlist),
        check_keys_in("ci", keys, allowlist, tree),
        check_keys_in("container", keys, allowlist, tree),
        check_keys_in("kubernetes", keys, allowlist, tree),
        check_keys_in("notebook", keys, allowlist, tree),
    ]
    return report
