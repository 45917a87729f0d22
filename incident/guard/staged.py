"""Check what is staged for the next commit (``git diff --cached``).

Every staged blob is read once through one ``git cat-file --batch``. A key that was
already in the previous version of the same file is reported but does not block:
this commit does not add it, and blocking unrelated work helps nobody.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from incident.allowlist import Allowlist, load_allowlist
from incident.detect.content import KeyMatch
from incident.errors import UsageError
from incident.guard.findings import GuardFinding, GuardResult, secret_matches
from incident.guard.gitio import ZERO_SHA, locate_repository, read_objects, run_git
from incident.redact import fingerprint

logger = logging.getLogger(__name__)

GITLINK_MODE = "160000"


def _staged_changes(repo: Path) -> list[tuple[str, str, str]]:
    """Return (path, old blob or ZERO_SHA, new blob) for every staged addition.

    Renames are detected so that moving a file that already held a key compares it
    with its old self instead of calling the key new.
    """
    # With no HEAD yet, `diff --cached` compares against the empty tree.
    raw = run_git(repo, "diff", "--cached", "--raw", "-z", "--find-renames",
                  "--no-abbrev", "--no-ext-diff")
    tokens = iter(raw.split(b"\0"))
    changes: list[tuple[str, str, str]] = []
    for header in tokens:
        if not header.startswith(b":"):
            continue
        _, new_mode, old_sha, new_sha, status = header[1:].decode().split(" ")
        path = next(tokens)
        if status[:1] in ("R", "C"):
            path = next(tokens)  # the first path was the source
        if status.startswith("D") or new_sha == ZERO_SHA or new_mode == GITLINK_MODE:
            continue
        changes.append((path.decode("utf-8", "surrogateescape"), old_sha, new_sha))
    return changes


def check_staged(repo: Path, allowlist: Allowlist | None = None) -> GuardResult:
    """Scan the blobs staged for the next commit.

    Raises:
        GitError: git could not list or read the index.
    """
    started = time.perf_counter()
    allowlist = allowlist if allowlist is not None else load_allowlist(repo)
    changes = _staged_changes(repo)
    blobs = read_objects(repo, (new for _, _, new in changes))

    hits: list[tuple[str, str, str, KeyMatch]] = []
    for path, old_sha, new_sha in changes:
        blob = blobs.get(new_sha)
        if blob is None:
            continue
        hits.extend((path, old_sha, new_sha, m) for m in secret_matches(blob.data))

    # Only files with a hit pay for reading their previous version.
    old_blobs = read_objects(repo, {old for _, old, _, _ in hits if old != ZERO_SHA})
    old_secrets = {
        sha: {m.secret for m in secret_matches(obj.data)}
        for sha, obj in old_blobs.items()
    }
    findings = [
        GuardFinding(
            secret=m.secret, path=path, line=m.line, encoding=m.encoding,
            object_id=new_sha, allowed=allowlist.reason_for(fingerprint(m.secret)),
            existing=m.secret in old_secrets.get(old_sha, set()),
        )
        for path, old_sha, new_sha, m in hits
    ]
    return GuardResult(
        what="staged changes", findings=findings, objects=len(blobs),
        seconds=time.perf_counter() - started,
    )


def ensure_work_tree(repo: Path) -> Path:
    """Return the work tree of repo; a bare repository has nothing staged.

    Raises:
        UsageError: repo is bare.
    """
    paths = locate_repository(repo)
    if paths.work_tree is None:
        raise UsageError(
            f"{repo} is a bare repository: it has no staged changes to check.",
            "Run `incident guard check` in a clone, or `incident audit` on this one.",
        )
    return paths.work_tree
