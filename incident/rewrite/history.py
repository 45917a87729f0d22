"""Rewrite every ref of one repository without the secrets, through git-filter-repo.

This is the only module that imports ``git_filter_repo``. It drives the library with
callbacks, so the secret values stay in this process and never reach the disk (no
``--replace-text`` file). What filter-repo does not do, we do around it:

* git notes: filter-repo passes notes commits through untouched, so the notes stay
  keyed by the old commit ids; we move them onto the rewritten commits afterwards.
* the stash: its older entries live only in the reflog; we remap them and keep that
  reflog when we expire the others.
* signatures: fast-export drops them; we list the signed commits and tags first, so
  the report can say which signatures the rewrite removed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import git_filter_repo as fr

from incident.errors import GitError
from incident.redact import fingerprint, redact, redact_text
from incident.rewrite.encodings import DEFAULT_MARKER, BlobAction, SecretReplacer
from incident.rewrite.gitcmd import (
    annotated_tags,
    expire_and_prune,
    git_dir,
    list_refs,
    refresh_worktrees,
    signed_objects,
)
from incident.rewrite.remap import move_notes, read_stash_log, write_stash_log

logger = logging.getLogger(__name__)

LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"
GITLINK_MODE = b"160000"


@dataclass(frozen=True)
class RewriteOptions:
    """How to rewrite.

    Attributes:
        marker: text that replaces each secret in contents and messages.
        cleanup: expire reflogs and prune, so the old objects are gone for good.
    """

    marker: str = DEFAULT_MARKER
    cleanup: bool = True


@dataclass(frozen=True)
class RemovedFile:
    """A file taken out of history because its content could not be edited safely."""

    path: str
    commit: str
    reason: str


@dataclass(frozen=True)
class RefChange:
    """One ref before and after the rewrite (old or new is None when absent).

    Attributes:
        name: the ref name for humans: a key inside it is shown redacted.
        ref: the exact ref name, needed to delete it on a remote; never shown.
        renamed_from: for a ref created by renaming, the (redacted) old name.
    """

    name: str
    old: str | None
    new: str | None
    renamed_from: str | None = None
    ref: str = field(default="", repr=False, compare=False)

    @property
    def status(self) -> str:
        if self.old is None:
            return "created"
        if self.new is None:
            return "deleted"
        return "unchanged" if self.old == self.new else "rewritten"


@dataclass(frozen=True)
class RewriteResult:
    """What one rewrite did, in numbers and names.

    Attributes:
        repository: the rewritten repository.
        commit_map: original commit id -> rewritten id (NULL_SHA when dropped).
        commit_map_path: filter-repo's commit-map file.
        refs: every ref before and after, including renamed and deleted ones.
        first_changed_commits: the oldest rewritten commits (original ids).
        removed_files: files removed from history (zip, binaries).
        blobs_rewritten, blobs_recompressed, messages_rewritten: counts.
        forms: the encodings that were replaced.
        signatures_removed: signed commits and tags (original ids) that lost their
            signature.
        submodules, lfs_pointers: paths left untouched (their content lives
            elsewhere).
        notes_moved: notes re-attached to rewritten commits.
        annotated_tags: annotated tag refs after the rewrite.
    """

    repository: Path
    commit_map: dict[str, str] = field(repr=False)
    commit_map_path: Path
    refs: list[RefChange]
    first_changed_commits: list[str]
    removed_files: list[RemovedFile]
    blobs_rewritten: int
    blobs_recompressed: int
    messages_rewritten: int
    forms: frozenset[str]
    signatures_removed: list[str]
    submodules: list[str]
    lfs_pointers: list[str]
    notes_moved: int
    annotated_tags: frozenset[str]

    @property
    def commits_rewritten(self) -> int:
        return sum(1 for old, new in self.commit_map.items() if old != new)

    @property
    def refs_changed(self) -> list[RefChange]:
        return [ref for ref in self.refs if ref.status != "unchanged"]


@dataclass
class _Tally:
    """Mutable counters the callbacks fill while filter-repo streams history."""

    blobs_rewritten: int = 0
    blobs_recompressed: int = 0
    messages_rewritten: int = 0
    forms: set[str] = field(default_factory=set)
    removed_marks: dict[int, str] = field(default_factory=dict)
    removed_files: list[RemovedFile] = field(default_factory=list)
    lfs_marks: set[int] = field(default_factory=set)
    lfs_paths: set[str] = field(default_factory=set)
    submodules: set[str] = field(default_factory=set)
    renamed_refs: dict[str, str] = field(default_factory=dict)


def display_path(raw: bytes) -> str:
    """A path for humans; bytes that are not UTF-8 are shown as \\x escapes."""
    return raw.decode("utf-8", "backslashreplace")


def ref_safe_marker(secret: str) -> str:
    """What replaces a key inside a ref name: valid in refs and unique per key."""
    return f"STRIPE-KEY-REMOVED-{fingerprint(secret)[:8]}"


def rewrite_history(repo: Path, secrets: list[str],
                    options: RewriteOptions | None = None,
                    continue_since: float | None = None) -> RewriteResult:
    """Rewrite every ref of repo (a mirror or the user's repo) without secrets.

    Args:
        repo: the repository to rewrite in place; back it up first.
        secrets: exact secret values to remove.
        options: marker text and cleanup choice.
        continue_since: an earlier rewrite of repo started at this time (epoch
            seconds) and died before it was recorded; if it got as far as writing
            its commit map, the new map is chained onto it, so old ids still map
            to the final ones.

    Raises:
        GitError: git-filter-repo or git failed; the repository may be half
            rewritten, so restore it from the backup.
    """
    options = options or RewriteOptions()
    replacer = SecretReplacer(secrets, options.marker)
    ref_replacers = [(s.encode(), ref_safe_marker(s).encode()) for s in secrets]
    directory = git_dir(repo)
    before = list_refs(repo)
    signed = signed_objects(repo)
    stash_log = read_stash_log(directory)
    earlier = _earlier_run(directory / "filter-repo", continue_since)
    _forget_previous_run(directory)

    tally = _Tally()
    callbacks = _make_callbacks(replacer, ref_replacers, tally)
    _run_filter_repo(repo, callbacks)

    metadata = directory / "filter-repo"
    _scrub_metadata(metadata, replacer, ref_replacers)
    commit_map = read_commit_map(metadata / "commit-map")
    first_changed = _read_first_changed(metadata / "first-changed-commits")
    if earlier is not None:
        first_map, first_first_changed = earlier
        commit_map = {old: commit_map.get(mid, mid) for old, mid in first_map.items()}
        first_changed = first_first_changed or first_changed
        _write_commit_map(metadata / "commit-map", commit_map)
    notes_moved = move_notes(repo, commit_map)
    if stash_log:
        write_stash_log(directory, stash_log, commit_map)
    refresh_worktrees(repo, commit_map)
    if options.cleanup:
        expire_and_prune(repo)

    after = list_refs(repo)
    refs = _ref_changes(before, after, tally.renamed_refs, secrets)
    signatures_removed = sorted(
        sha for sha in signed["commits"] if commit_map.get(sha, sha) != sha
    ) + sorted(
        name for name, sha in signed["tags"].items() if after.get(name) != sha
    )
    return RewriteResult(
        repository=repo,
        commit_map=commit_map,
        commit_map_path=metadata / "commit-map",
        refs=refs,
        first_changed_commits=first_changed,
        removed_files=tally.removed_files,
        blobs_rewritten=tally.blobs_rewritten,
        blobs_recompressed=tally.blobs_recompressed,
        messages_rewritten=tally.messages_rewritten,
        forms=frozenset(tally.forms),
        signatures_removed=signatures_removed,
        submodules=sorted(tally.submodules),
        lfs_pointers=sorted(tally.lfs_paths),
        notes_moved=notes_moved,
        annotated_tags=frozenset(annotated_tags(repo)),
    )


def _make_callbacks(replacer: SecretReplacer,
                    ref_replacers: list[tuple[bytes, bytes]],
                    tally: _Tally) -> dict[str, Callable[..., Any]]:
    """The four filter-repo callbacks, closed over the replacer and the tally."""

    def blob_callback(blob: Any, _metadata: Any) -> None:
        if blob.data.startswith(LFS_POINTER):
            tally.lfs_marks.add(blob.id)
        outcome = replacer.replace(blob.data)
        if not outcome.changed:
            return
        tally.forms.update(outcome.forms)
        if outcome.action is BlobAction.REMOVE:
            tally.removed_marks[blob.id] = outcome.reason or "cannot be edited"
            # NOTE: the blob is emptied rather than skipped: filter-repo would drop
            # the file changes of a skipped blob before commit_callback could
            # record their paths. The empty blob is unreferenced and pruned.
            blob.data = b""
            return
        if outcome.action is BlobAction.RECOMPRESSED:
            tally.blobs_recompressed += 1
        else:
            tally.blobs_rewritten += 1
        blob.data = outcome.data

    def commit_callback(commit: Any, _metadata: Any) -> None:
        message = replacer.replace_text(commit.message)
        if message != commit.message:
            tally.messages_rewritten += 1
            commit.message = message
        for attribute in ("author_name", "author_email", "committer_name",
                          "committer_email"):
            value = getattr(commit, attribute)
            setattr(commit, attribute, replacer.replace_text(value))
        kept = []
        for change in commit.file_changes:
            if change.type == b"M" and change.blob_id in tally.removed_marks:
                tally.removed_files.append(RemovedFile(
                    path=replacer.mask(display_path(change.filename)),
                    commit=_decode(commit.original_id),
                    reason=tally.removed_marks[change.blob_id],
                ))
                continue
            if change.type == b"M" and change.mode == GITLINK_MODE:
                tally.submodules.add(display_path(change.filename))
            if change.type == b"M" and change.blob_id in tally.lfs_marks:
                tally.lfs_paths.add(display_path(change.filename))
            if change.filename:
                change.filename = replacer.replace_text(change.filename)
            kept.append(change)
        commit.file_changes = kept

    def tag_callback(tag: Any, _metadata: Any) -> None:
        message = replacer.replace_text(tag.message)
        if message != tag.message:
            tally.messages_rewritten += 1
            tag.message = message

    def refname_callback(refname: bytes) -> bytes:
        new = refname
        for needle, marker in ref_replacers:
            new = new.replace(needle, marker)
        if new != refname:
            tally.renamed_refs[_decode(new)] = _decode(refname)
        return new

    return {
        "blob_callback": blob_callback,
        "commit_callback": commit_callback,
        "tag_callback": tag_callback,
        "refname_callback": refname_callback,
    }


def _run_filter_repo(repo: Path, callbacks: dict[str, Callable[..., Any]]) -> None:
    """Run filter-repo inside repo, its chatter sent to the debug log."""
    # --force: the repository is either our fresh mirror or the user's repo after a
    # verified backup, so filter-repo's fresh-clone check adds nothing.
    # --sensitive-data-removal --no-fetch keeps the origin remote (needed to push)
    # and never reaches the network on its own.
    # --prune-empty/--prune-degenerate never: the history keeps every commit, even
    # one whose only change was a removed archive.
    args = fr.FilteringOptions.parse_args([
        "--force", "--quiet", "--no-gc", "--sensitive-data-removal", "--no-fetch",
        "--prune-empty", "never", "--prune-degenerate", "never",
    ])
    chatter = io.StringIO()
    with _inside(repo), contextlib.redirect_stdout(chatter):
        try:
            fr.RepoFilter(args, **callbacks).run()
        except SystemExit as exc:
            raise GitError(
                f"git-filter-repo stopped in {repo}: {redact_text(str(exc))}",
                "The repository may be half rewritten: restore it from the backup "
                "bundle (git clone BUNDLE) and run the purge again.",
            ) from exc
    logger.debug("filter-repo: %s", redact_text(chatter.getvalue()))


@contextlib.contextmanager
def _inside(repo: Path) -> Iterator[None]:
    """filter-repo works on the current directory: enter repo for its run."""
    previous = os.getcwd()
    os.chdir(repo)
    try:
        yield
    finally:
        os.chdir(previous)


def _earlier_run(metadata: Path, since: float | None
                 ) -> tuple[dict[str, str], list[str]] | None:
    """The commit map and first changed commits an interrupted run wrote."""
    commit_map = metadata / "commit-map"
    if since is None or not commit_map.exists() or commit_map.stat().st_mtime < since:
        return None
    return (read_commit_map(commit_map),
            _read_first_changed(metadata / "first-changed-commits"))


def _write_commit_map(path: Path, commit_map: dict[str, str]) -> None:
    lines = ["old new"] + [f"{old} {new}" for old, new in commit_map.items()]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")


def _forget_previous_run(directory: Path) -> None:
    """Make filter-repo start afresh instead of continuing an earlier run."""
    marker = directory / "filter-repo" / "already_ran"
    if marker.exists():
        marker.unlink()


def _scrub_metadata(metadata: Path, replacer: SecretReplacer,
                    ref_replacers: list[tuple[bytes, bytes]]) -> None:
    """filter-repo's ref-map names the original refs: a key in a ref name must go."""
    if not metadata.is_dir():
        return
    for path in metadata.iterdir():
        if not path.is_file():
            continue
        data = path.read_bytes()
        new = replacer.replace_text(data)
        for needle, marker in ref_replacers:
            new = new.replace(needle, marker)
        if new != data:
            path.write_bytes(new)


def read_commit_map(path: Path) -> dict[str, str]:
    """filter-repo's commit-map file: original commit id -> rewritten id."""
    mapping: dict[str, str] = {}
    with open(path, encoding="ascii") as handle:
        next(handle, None)  # header line: "old new"
        for line in handle:
            old, new = line.split()
            mapping[old] = new
    return mapping


def _read_first_changed(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def mask_secrets(text: str, secrets: list[str]) -> str:
    """Show text with each known secret redacted (ref names, paths)."""
    for secret in secrets:
        text = text.replace(secret, redact(secret))
    return text


def _ref_changes(before: dict[str, str], after: dict[str, str],
                 renamed: dict[str, str], secrets: list[str]) -> list[RefChange]:
    changes = []
    for name in sorted(set(before) | set(after)):
        origin = renamed.get(name) if name not in before else None
        changes.append(RefChange(
            name=mask_secrets(name, secrets),
            old=before.get(name),
            new=after.get(name),
            renamed_from=mask_secrets(origin, secrets) if origin else None,
            ref=name,
        ))
    return changes


def _decode(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else value.decode("utf-8", "surrogateescape")
