"""Place objects that hold secrets onto commits, paths and refs.

The object stream tells us *which* blobs hold a key but not *where* they sit. Rather
than walk every commit's diff in Python, we ask git to do the walk once in C with
``git log --find-object``: it reports only the commits whose diff adds or removes one
of the given blobs, on every ref and every reflog entry. A commit *introduces* a
blob at a path when the blob is new there against each of its parents, which also
catches a key that only a merge's conflict resolution brought in.
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from incident.history.model import CommitInfo
from incident.history.repository import Repository, git_env, run_git

logger = logging.getLogger(__name__)

FIND_OBJECT_BATCH = 400
REFLOG_ANCESTRY_LIMIT = 200
_NOTE_PATH = re.compile(r"^(?:[0-9a-f]{2}/)*[0-9a-f]{2,}$")


def iso_utc(epoch: str | int) -> str:
    """Seconds since the epoch as ISO 8601 in UTC with a Z suffix."""
    moment = datetime.fromtimestamp(int(epoch), tz=UTC)
    return moment.isoformat().replace("+00:00", "Z")


def decode_path(raw: bytes) -> str:
    """A git path for display and JSON: UTF-8 where valid, escapes for the rest."""
    return raw.decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class Introduction:
    """A commit whose tree got a target blob at path, new against every parent."""

    commit: str
    path: str
    blob: str
    reachable: bool = True


@dataclass
class Placement:
    """Where the target objects live in history."""

    introductions: list[Introduction] = field(default_factory=list)
    commits: dict[str, CommitInfo] = field(default_factory=dict)
    refs_by_commit: dict[str, list[str]] = field(default_factory=dict)
    tips_by_blob: dict[str, list[str]] = field(default_factory=dict)
    unreachable_commits: set[str] = field(default_factory=set)
    index_paths: dict[str, list[str]] = field(default_factory=dict)
    refs_by_tag: dict[str, list[str]] = field(default_factory=dict)


def _parse_find_object_log(
    output: bytes, targets: set[str], reachable: bool
) -> list[Introduction]:
    """Parse ``log -m --raw -z --format=%x01%H %P`` into introductions."""
    seen: dict[tuple[str, str, str], int] = defaultdict(int)
    parents: dict[str, int] = {}
    for record in output.split(b"\x01")[1:]:
        header, _, rest = record.partition(b"\0")
        fields = header.decode().split()
        commit = fields[0]
        parents[commit] = len(fields) - 1
        items = rest.lstrip(b"\n").split(b"\0")
        for meta, path in zip(items[0::2], items[1::2], strict=False):
            if not meta.startswith(b":"):
                continue
            parts = meta[1:].split()
            new_blob = parts[3].decode()
            if new_blob in targets:
                seen[(commit, decode_path(path), new_blob)] += 1
    return [
        Introduction(commit=commit, path=path, blob=blob, reachable=reachable)
        for (commit, path, blob), count in seen.items()
        if count >= max(1, parents[commit])
    ]


def find_introductions(
    repo: Repository, blobs: set[str], revisions: list[str], reachable: bool
) -> list[Introduction]:
    """Commits (walked from revisions) that introduce any of blobs, with paths."""
    found: list[Introduction] = []
    ordered = sorted(blobs)
    for start in range(0, len(ordered), FIND_OBJECT_BATCH):
        batch = ordered[start : start + FIND_OBJECT_BATCH]
        output = run_git(
            repo,
            "log",
            *revisions,
            "-m",
            "--no-renames",
            "--no-textconv",
            "--no-ext-diff",
            "--raw",
            "-z",
            "--no-abbrev",
            "--format=%x01%H %P",
            *(f"--find-object={blob}" for blob in batch),
        )
        found.extend(_parse_find_object_log(output, set(batch), reachable))
    return found


def read_commit_info(repo: Repository, commits: set[str]) -> dict[str, CommitInfo]:
    """Author and dates for each commit, in one git call."""
    if not commits:
        return {}
    output = run_git(
        repo,
        "log",
        "--no-walk=unsorted",
        "--stdin",
        "--format=%H%x00%an%x00%ae%x00%at%x00%ct%x00",
        input="\n".join(sorted(commits)).encode() + b"\n",
    )
    info: dict[str, CommitInfo] = {}
    for record in output.split(b"\0\n"):
        fields = record.lstrip(b"\n").split(b"\0")
        if len(fields) < 5:
            continue
        sha, name, email, author_time, commit_time = (
            f.decode("utf-8", "replace") for f in fields[:5]
        )
        info[sha] = CommitInfo(
            sha, name, email, iso_utc(author_time), iso_utc(commit_time)
        )
    return info


def refs_containing(repo: Repository, commit: str) -> list[str]:
    """Every ref whose history holds commit."""
    output = run_git(
        repo, "for-each-ref", "--format=%(refname)", f"--contains={commit}", check=False
    )
    return output.decode("utf-8", "backslashreplace").split()


def reflog_entries(repo: Repository) -> list[tuple[str, str]]:
    """(commit, selector) for every reflog entry of every ref, newest first."""
    output = run_git(repo, "log", "-g", "--all", "--format=%H %gD", check=False)
    entries = []
    for line in output.decode("utf-8", "backslashreplace").splitlines():
        sha, _, selector = line.partition(" ")
        if sha and selector:
            entries.append((sha, selector))
    return entries


def _is_ancestor(repo: Repository, ancestor: str, descendant: str) -> bool:
    result = subprocess.run(
        [
            "git",
            "-C",
            str(repo.path),
            "merge-base",
            "--is-ancestor",
            ancestor,
            descendant,
        ],
        capture_output=True,
        env=git_env(),
        check=False,
    )
    return result.returncode == 0


def reflogs_containing(
    repo: Repository, commit: str, entries: list[tuple[str, str]]
) -> list[str]:
    """Reflog selectors (``refs/stash@{2}``) whose entry holds commit."""
    exact = [selector for sha, selector in entries if sha == commit]
    if exact:
        return exact
    holders: list[str] = []
    checked: dict[str, bool] = {}
    for sha, selector in entries[:REFLOG_ANCESTRY_LIMIT]:
        if sha not in checked:
            checked[sha] = _is_ancestor(repo, commit, sha)
        if checked[sha]:
            holders.append(selector)
    return holders


def dangling_commits(repo: Repository) -> list[str]:
    """Tips of the commit chains that no ref and no reflog holds.

    Walking from these tips reaches every unreachable commit below them.
    """
    output = run_git(repo, "fsck", "--connectivity-only", "--no-progress", check=False)
    return [
        line.split()[2].decode()
        for line in output.splitlines()
        if line.startswith(b"dangling commit ")
    ]


def branch_tips(repo: Repository) -> list[str]:
    """Local and remote-tracking branches, without symbolic refs like origin/HEAD."""
    output = run_git(
        repo,
        "for-each-ref",
        "--format=%(refname) %(symref)",
        "refs/heads",
        "refs/remotes",
        check=False,
    )
    tips = []
    for line in output.decode("utf-8", "backslashreplace").splitlines():
        name, _, symref = line.partition(" ")
        if name and not symref:
            tips.append(name)
    return tips


def blobs_at_tip(repo: Repository, ref: str) -> set[str]:
    """Every blob id in the tree of ref's tip."""
    output = run_git(repo, "ls-tree", "-r", "-z", "--full-tree", ref, check=False)
    blobs = set()
    for entry in output.split(b"\0"):
        parts = entry.split(b"\t", 1)[0].split()
        if len(parts) == 3 and parts[1] == b"blob":
            blobs.add(parts[2].decode())
    return blobs


def staged_paths(repo: Repository, blobs: set[str]) -> dict[str, list[str]]:
    """Paths in the index (staged, never committed) that hold one of blobs."""
    if repo.work_tree is None:
        return {}
    output = run_git(repo, "ls-files", "-s", "-z", check=False)
    found: dict[str, list[str]] = defaultdict(list)
    for entry in output.split(b"\0"):
        meta, _, path = entry.partition(b"\t")
        parts = meta.split()
        if len(parts) >= 2 and parts[1].decode() in blobs:
            found[parts[1].decode()].append(decode_path(path))
    return dict(found)


def is_note_path(path: str) -> bool:
    """True for a notes-tree path such as ``ab/cdef…`` naming an annotated commit."""
    return bool(_NOTE_PATH.match(path)) and len(path.replace("/", "")) in (40, 64)


def refs_pointing_at(repo: Repository, objects: set[str]) -> dict[str, list[str]]:
    """Refs whose value is one of objects (annotated tags, mostly)."""
    if not objects:
        return {}
    output = run_git(
        repo, "for-each-ref", "--format=%(objectname) %(refname)", check=False
    )
    refs: dict[str, list[str]] = defaultdict(list)
    for line in output.decode("utf-8", "backslashreplace").splitlines():
        oid, _, name = line.partition(" ")
        if oid in objects:
            refs[oid].append(name)
    return dict(refs)


def place(
    repo: Repository, blobs: set[str], message_commits: set[str], tags: set[str]
) -> Placement:
    """Find where every target blob, message commit and tag sits in history.

    Args:
        blobs: blob ids that hold a secret.
        message_commits: commit ids whose message holds a secret.
        tags: annotated tag objects whose message holds a secret.
    """
    placement = Placement(refs_by_tag=refs_pointing_at(repo, tags))
    if blobs:
        placement.introductions = find_introductions(
            repo, blobs, ["--all", "--reflog"], reachable=True
        )

    # Whatever the refs and reflogs do not hold may sit in dangling commits.
    placed = {intro.blob for intro in placement.introductions}
    unplaced = blobs - placed
    dangling = dangling_commits(repo) if unplaced else []
    if dangling:
        placement.introductions += find_introductions(
            repo, unplaced, [*dangling, "--not", "--all", "--reflog"], reachable=False
        )
        unplaced -= {intro.blob for intro in placement.introductions}
    if unplaced:
        placement.index_paths = staged_paths(repo, unplaced)

    commits = {intro.commit for intro in placement.introductions} | message_commits
    placement.commits = read_commit_info(repo, commits)

    entries: list[tuple[str, str]] | None = None
    for commit in commits:
        refs = refs_containing(repo, commit)
        if not refs:
            entries = entries if entries is not None else reflog_entries(repo)
            refs = [f"reflog:{s}" for s in reflogs_containing(repo, commit, entries)]
        if not refs:
            placement.unreachable_commits.add(commit)
        placement.refs_by_commit[commit] = refs

    if blobs:
        for ref in branch_tips(repo):
            for blob in blobs_at_tip(repo, ref) & blobs:
                placement.tips_by_blob.setdefault(blob, []).append(ref)
    return placement
