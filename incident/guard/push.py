"""Check what a push would send: the objects the remote does not have yet.

The pushed objects come from ``git rev-list --objects LOCAL --not REMOTE`` (for a
new branch: not on any remote-tracking ref), so merges and commit or tag messages
are covered too. Each is read once through one ``git cat-file --batch``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from incident.allowlist import Allowlist, load_allowlist
from incident.errors import UsageError
from incident.guard.findings import GuardFinding, GuardResult, secret_matches
from incident.guard.gitio import ZERO_SHA, read_objects, resolve_names, run_git
from incident.redact import fingerprint, redact_text

logger = logging.getLogger(__name__)

_OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


@dataclass(frozen=True)
class PushUpdate:
    """Pre-push input: ``<local ref> <local sha> <remote ref> <remote sha>``."""

    local_ref: str
    local_sha: str
    remote_ref: str
    remote_sha: str

    @classmethod
    def parse(cls, line: str) -> PushUpdate:
        parts = line.split()
        if len(parts) != 4 or not all(_OBJECT_ID.fullmatch(p) for p in parts[1::2]):
            raise UsageError(
                f"Unexpected pre-push input line: {redact_text(line)!r}.",
                "git passes `<local ref> <local sha> <remote ref> <remote sha>`; "
                "run the check from the pre-push hook.",
            )
        return cls(*parts)


def parse_push_input(lines: Iterable[str]) -> list[PushUpdate]:
    """Parse the lines git writes to a pre-push hook's stdin."""
    return [PushUpdate.parse(line) for line in lines if line.strip()]


def _exclusions(repo: Path, update: PushUpdate) -> list[str]:
    """What the remote already has: its old tip, or every remote-tracking ref."""
    if update.remote_sha != ZERO_SHA and resolve_names(repo, [update.remote_sha]):
        return [update.remote_sha]
    # A new branch (or a remote tip we never fetched): anything on a remote-tracking
    # ref is already published, everything else goes out with this push.
    return ["--remotes"]


def _pushed_objects(repo: Path, updates: list[PushUpdate]) -> dict[str, str | None]:
    """Object ids the push sends, with a path for blobs (None for commits, tags)."""
    objects: dict[str, str | None] = {}
    for update in updates:
        if update.local_sha == ZERO_SHA:
            continue  # a deletion sends nothing
        raw = run_git(repo, "rev-list", "--objects", update.local_sha, "--not",
                      *_exclusions(repo, update))
        for line in raw.decode("utf-8", "surrogateescape").splitlines():
            sha, _, path = line.partition(" ")
            objects.setdefault(sha, path or None)
    return objects


def _introducing_commit(
    repo: Path, updates: list[PushUpdate], path: str, blob: str
) -> tuple[str | None, list[str]]:
    """Find the first pushed commit whose path became blob; return it and old blobs."""
    for update in updates:
        if update.local_sha == ZERO_SHA:
            continue
        listing = run_git(repo, "rev-list", "--reverse", "--parents",
                          update.local_sha, "--not", *_exclusions(repo, update),
                          "--", path).decode()
        rows = [line.split() for line in listing.splitlines()]
        names = [f"{sha}:{path}" for row in rows for sha in row]
        resolved = resolve_names(repo, names)
        for commit, *parents in rows:
            if resolved.get(f"{commit}:{path}") != blob:
                continue
            old = [resolved[f"{p}:{path}"] for p in parents
                   if f"{p}:{path}" in resolved]
            if blob in old:
                continue  # unchanged from a parent: not where it was introduced
            return commit, old
    return None, []


def check_push(
    repo: Path, updates: list[PushUpdate], allowlist: Allowlist | None = None,
    remote: str | None = None,
) -> GuardResult:
    """Scan every object a push would send: blobs, commit and tag messages.

    Raises:
        GitError: git could not list or read the pushed objects.
    """
    started = time.perf_counter()
    allowlist = allowlist if allowlist is not None else load_allowlist(repo)
    wanted = _pushed_objects(repo, updates)
    objects = read_objects(repo, wanted)

    findings: list[GuardFinding] = []
    seen: set[tuple[str, str | None]] = set()
    for sha, obj in objects.items():
        if obj.type == "tree":
            continue
        path = wanted[sha] if obj.type == "blob" else None
        matches = secret_matches(obj.data)
        if not matches:
            continue
        commit, old_blobs = (
            _introducing_commit(repo, updates, path, sha) if path else (sha, [])
        )
        old_secrets = {
            m.secret
            for old in read_objects(repo, old_blobs).values()
            for m in secret_matches(old.data)
        }
        for m in matches:
            if (m.secret, path) in seen:
                continue
            seen.add((m.secret, path))
            findings.append(GuardFinding(
                secret=m.secret, path=path, line=m.line, encoding=m.encoding,
                object_id=sha, commit=commit,
                allowed=allowlist.reason_for(fingerprint(m.secret)),
                existing=m.secret in old_secrets,
            ))

    refs = len([u for u in updates if u.local_sha != ZERO_SHA])
    target = f"push to {remote}" if remote else "push"
    return GuardResult(
        what=f"{target} ({refs} ref{'s' if refs != 1 else ''})", findings=findings,
        objects=len(objects), seconds=time.perf_counter() - started,
    )


def check_range(repo: Path, from_ref: str, to_ref: str,
                allowlist: Allowlist | None = None) -> GuardResult:
    """Scan the commits from_ref..to_ref (the pre-commit framework's push stage)."""
    to_sha = run_git(repo, "rev-parse", "--verify", f"{to_ref}^{{commit}}").decode()
    update = PushUpdate("HEAD", to_sha.strip(), "HEAD", from_ref or ZERO_SHA)
    if update.remote_sha != ZERO_SHA:
        resolved = resolve_names(repo, [from_ref])
        update = PushUpdate("HEAD", update.local_sha, "HEAD",
                            resolved.get(from_ref, ZERO_SHA))
    return check_push(repo, [update], allowlist)
