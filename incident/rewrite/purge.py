"""The purge, start to end: back up, rewrite, clean up, verify, push, report.

Each irreversible step is journaled before and after, so another engineer can resume
with ``respond --resume`` without a second backup, rewrite or push.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from incident.errors import ExitCode, IncidentError, UsageError
from incident.journal import Journal, keep_out_of_git, utc_now
from incident.lock import repository_lock
from incident.redact import fingerprint, redact, redact_text
from incident.rewrite.encodings import DEFAULT_MARKER
from incident.rewrite.gitcmd import (
    create_backup,
    git_dir,
    list_refs,
    main_repository,
    mirror_clone,
    refuse_unsafe_source,
    run_git,
)
from incident.rewrite.history import (
    RefChange,
    RemovedFile,
    RewriteOptions,
    RewriteResult,
    read_commit_map,
    rewrite_history,
)
from incident.rewrite.nextsteps import NextStep, support_request, unreachable_copies
from incident.rewrite.push import (
    PushOutcome,
    PushStep,
    format_command,
    is_remote_url,
    plan_push,
    push_refs,
    remote_refs,
    remote_url,
)
from incident.rewrite.verify import VerifyResult, verify_clean

logger = logging.getLogger(__name__)

STEP = "purge"


@dataclass(frozen=True)
class PurgeOptions:
    """How to purge.

    Attributes:
        in_place: rewrite the given repository (after the backup) instead of a
            fresh mirror clone.
        workdir: where the backup and the mirror go (default: the incident
            directory, or a folder next to the repository).
        replacement: the marker that replaces each key.
        dry_run: rewrite a throwaway mirror to count what would change; change
            nothing.
        push: force-push the rewritten refs to the remote.
        remote: remote name (or URL) to push to.
        secrets: exact secret values to purge; None means scan the repository.
    """

    in_place: bool = False
    workdir: Path | None = None
    replacement: str = DEFAULT_MARKER
    dry_run: bool = False
    push: bool = False
    remote: str = "origin"
    secrets: tuple[str, ...] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class PurgedKey:
    """A key the purge removed, as it may be shown."""

    redacted: str
    fingerprint: str


@dataclass(frozen=True)
class PurgeResult:
    """Everything the purge did and what is left for the operator.

    Attributes:
        repository: the repository given.
        keys: the keys purged (redacted, fingerprinted).
        dry_run: nothing was changed; the counts are what a purge would change.
        backup: the bundle holding the original history (and the keys).
        rewritten: the rewritten repository (the mirror, or the repository itself).
        commit_map_path: old -> new commit ids, one pair per line.
        commits_total, commits_rewritten, blobs_changed: counts.
        refs: every ref that changed (rewritten, created by a rename, deleted).
        first_changed_commits: the oldest rewritten commits (original ids).
        removed_files: files removed from history (archives, binaries).
        signatures_removed, submodules, lfs_pointers, notes_moved: see
            RewriteResult.
        forms: encodings that were replaced.
        verification: the verdict of the final check (None for a dry run).
        remote: the push target, if known.
        push_outcomes: what the remote said per ref (empty without --push).
        push_commands: the commands to push by hand (without --push).
        next_steps: what no rewrite can reach, each with an action.
        support_request: text for the hosting service's support.
        resumed: this run continued an earlier one from its journal.
    """

    repository: Path
    keys: list[PurgedKey]
    dry_run: bool
    backup: Path | None = None
    rewritten: Path | None = None
    commit_map_path: Path | None = None
    commits_total: int = 0
    commits_rewritten: int = 0
    blobs_changed: int = 0
    refs: list[RefChange] = field(default_factory=list)
    first_changed_commits: list[str] = field(default_factory=list)
    removed_files: list[RemovedFile] = field(default_factory=list)
    signatures_removed: list[str] = field(default_factory=list)
    submodules: list[str] = field(default_factory=list)
    lfs_pointers: list[str] = field(default_factory=list)
    notes_moved: int = 0
    forms: frozenset[str] = frozenset()
    verification: VerifyResult | None = None
    remote: str | None = None
    push_outcomes: list[PushOutcome] = field(default_factory=list)
    push_commands: list[str] = field(default_factory=list)
    next_steps: list[NextStep] = field(default_factory=list)
    support_request: str = ""
    resumed: bool = False

    @property
    def refs_deleted(self) -> list[RefChange]:
        return [ref for ref in self.refs if ref.status == "deleted"]

    @property
    def pushed(self) -> bool:
        return bool(self.push_outcomes) and all(o.ok for o in self.push_outcomes
                                                if o.action != "skip")


class PurgeVerificationError(IncidentError):
    """The rewritten repository still holds a purged key; the backup is kept."""

    # Exit code 1, as for a scan with findings: a key is still there.
    exit_code = ExitCode.FINDINGS

    def __init__(self, message: str, hint: str, result: PurgeResult) -> None:
        super().__init__(message, hint)
        self.result = result


def purge_repository(repo: Path, options: PurgeOptions,
                     journal: Journal | None = None) -> PurgeResult:
    """Remove every leaked key from repo's history, prove it, and push if asked.

    Args:
        repo: the repository holding the keys.
        options: see PurgeOptions.
        journal: the incident's journal; events go there before and after each
            irreversible step, and an earlier run recorded there is resumed.

    Raises:
        RefusedError: shallow clone, or uncommitted changes with --in-place.
        PurgeVerificationError: a key remains after the rewrite (backup kept).
        GitError: git or git-filter-repo failed (backup kept).
    """
    repo = repo.resolve()
    git_dir(repo)
    if options.dry_run:
        return _purge(repo, options, journal)
    with repository_lock(repo, "incident purge"):
        return _purge(repo, options, journal)


def _purge(repo: Path, options: PurgeOptions,
           journal: Journal | None) -> PurgeResult:
    resumed = _resume(repo, options, journal)
    if resumed is not None:
        return resumed
    refuse_unsafe_source(repo, in_place=options.in_place)
    secrets = _secrets(repo, options)
    keys = [PurgedKey(redact(s), fingerprint(s)) for s in secrets]
    if not secrets:
        return PurgeResult(repository=repo, keys=[], dry_run=options.dry_run)
    if options.dry_run:
        return _dry_run(repo, secrets, keys, options)

    # Ask the remote first: with --push, an unreachable remote stops the purge
    # before anything is written.
    url = _target_url(repo, options)
    remote_values = remote_refs(repo, url) if options.push and url else None
    workdir = _workdir(repo, options, journal)
    stamp = _stamp()
    record = _recorder(journal, repo)

    interrupted = _interrupted_run(repo, options, journal)
    if interrupted is not None:
        # An earlier run died between its backup and the end of its rewrite: an
        # in-place one may have rewritten the repository already. The first
        # backup holds the original; a second would copy the keys again.
        backup, since = interrupted
    else:
        backup = workdir / f"{repo.name.removesuffix('.git')}-backup-{stamp}.bundle"
        record("backup-started", path=str(backup))
        create_backup(repo, backup)
        record("backup-done", path=str(backup))
        since = None

    # A linked worktree shares its refs with the main one: rewrite from there.
    target = main_repository(repo) if options.in_place else mirror_clone(
        repo, workdir / f"{repo.name.removesuffix('.git')}-purged-{stamp}.git")
    record("rewrite-started", target=str(target),
           keys=[{"redacted": k.redacted, "fingerprint": k.fingerprint} for k in keys])
    rewrite = rewrite_history(target, secrets, RewriteOptions(options.replacement),
                              continue_since=since)
    if since is not None:
        rewrite = replace(rewrite, refs=_refs_against_backup(target, backup))
    record("rewrite-done", target=str(target), backup=str(backup),
           commit_map=str(rewrite.commit_map_path),
           commits_rewritten=rewrite.commits_rewritten,
           first_changed=rewrite.first_changed_commits[:20],
           refs_changed=len(rewrite.refs_changed),
           removed_files=len(rewrite.removed_files),
           detail=_rewrite_detail(rewrite))

    record("verify-started", target=str(target))
    verification = verify_clean(target, secrets)
    record("verify-done", target=str(target), clean=verification.clean,
           remnants=len(verification.remnants), checked_at=verification.checked_at)
    result = _result(repo, keys, backup, rewrite, verification, url)
    if not verification.clean:
        raise _verification_error(result)

    steps, skipped = plan_push(rewrite, remote_values)
    return _finish(result, steps, skipped, options, url, remote_values, record,
                   done=set())


def _finish(result: PurgeResult, steps: list[PushStep], skipped: list[PushOutcome],
            options: PurgeOptions, url: str | None,
            remote_values: dict[str, str] | None, record: _Recorder,
            done: set[str], previous: list[PushOutcome] | None = None) -> PurgeResult:
    """Push (or print the commands), then attach the next steps.

    previous: what an earlier, interrupted run of this purge already pushed; it
    stays in the result, so a resumed run reports every ref.
    """
    assert result.rewritten is not None
    outcomes: list[PushOutcome] = []
    commands: list[str] = []
    if options.push and url:
        todo = [s for s in steps if s.ref_id not in done]
        fresh: list[PushOutcome] = []
        if todo or not previous:
            record("push-started", remote=redact_text(url), refs=len(todo))
            fresh = push_refs(
                result.rewritten, url, todo,
                lambda step, outcome: record("push-ref", ref_id=step.ref_id,
                                             name=step.name, action=step.action,
                                             ok=outcome.ok, detail=outcome.detail,
                                             remote=redact_text(url)),
            )
        again = {o.ref_id for o in fresh}
        outcomes = [o for o in previous or [] if o.ref_id not in again]
        outcomes += fresh + skipped
        if todo or not previous:
            record("push-done", remote=redact_text(url),
                   refused=sum(1 for o in outcomes if not o.ok))
    else:
        # Without such a remote, a bare name would mean the mirror's own origin,
        # which is the local clone: say where to put the URL instead.
        target = url or "REMOTE-URL"
        commands = [_printable(format_command(result.rewritten, target, s), target,
                               result.repository, options.remote) for s in steps]
        if url is None and commands:
            commands.append(f"# {result.repository} has no remote named "
                            f"{options.remote!r}: put the URL the history was pushed "
                            "to in place of REMOTE-URL")

    pull_refs = sorted(r for r in (remote_values or {}) if r.startswith("refs/pull/"))
    failed = [o.name for o in outcomes if not o.ok]
    steps_left = unreachable_copies(
        # In place (from a linked worktree, the main tree is what was rewritten):
        # the user's own clone is clean, not one more copy to chase.
        source=None if result.rewritten in (
            result.repository, main_repository(result.repository)) else str(
            result.repository),
        backup=str(result.backup), pushed=not steps or (bool(outcomes) and not failed),
        push_failed=failed, first_changed=result.first_changed_commits,
        pull_refs=pull_refs, signatures_removed=len(result.signatures_removed),
        removed_files=len(result.removed_files), submodules=result.submodules,
        lfs_pointers=result.lfs_pointers,
    )
    request = support_request(redact_text(url or str(result.repository)),
                              result.first_changed_commits, pull_refs,
                              result.commits_rewritten, utc_now()[:10],
                              pushed=bool(outcomes) and not failed)
    return replace(result, push_outcomes=outcomes, push_commands=commands,
                    next_steps=steps_left, support_request=request)


def _printable(command: str, url: str, repo: Path, remote: str) -> str:
    """A push command without the credentials a remote URL may carry: the URL is
    read from the repository's config when the command runs."""
    if redact_text(url) == url:
        return command
    if is_remote_url(remote):
        return (command.replace(url, redact_text(url))
                + "  # put the URL's credentials back where *** stands")
    lookup = (f'"$(git -C {shlex.quote(str(repo))} remote get-url '
              f'{shlex.quote(remote)})"')
    return command.replace(shlex.quote(url), lookup).replace(url, lookup)


def _result(repo: Path, keys: list[PurgedKey], backup: Path | None,
            rewrite: RewriteResult, verification: VerifyResult | None,
            url: str | None) -> PurgeResult:
    # NOTE: in a mirror, filter-repo folds refs/remotes/origin/* into branches;
    # those deletions are bookkeeping of the copy, not changes to report.
    refs = [ref for ref in rewrite.refs_changed
            if rewrite.repository == repo or not ref.ref.startswith("refs/remotes/")]
    removed_blobs = {(f.path, f.commit) for f in rewrite.removed_files}
    return PurgeResult(
        repository=repo,
        keys=keys,
        dry_run=False,
        backup=backup,
        rewritten=rewrite.repository,
        commit_map_path=rewrite.commit_map_path,
        commits_total=len(rewrite.commit_map),
        commits_rewritten=rewrite.commits_rewritten,
        blobs_changed=rewrite.blobs_rewritten + rewrite.blobs_recompressed
        + len(removed_blobs),
        refs=refs,
        first_changed_commits=rewrite.first_changed_commits,
        removed_files=rewrite.removed_files,
        signatures_removed=rewrite.signatures_removed,
        submodules=rewrite.submodules,
        lfs_pointers=rewrite.lfs_pointers,
        notes_moved=rewrite.notes_moved,
        forms=rewrite.forms,
        verification=verification,
        remote=redact_text(url) if url else None,
    )


def _verification_error(result: PurgeResult) -> PurgeVerificationError:
    assert result.verification is not None
    lines = [r.describe() for r in result.verification.remnants[:20]]
    if result.verification.incomplete:
        lines.append("the verification scan could not read every object")
    return PurgeVerificationError(
        f"the rewritten repository {result.rewritten} is NOT clean: "
        + "; ".join(lines),
        f"Nothing was pushed. The backup {result.backup} is kept; keep it until a "
        "purge verifies clean. Report this with the lines above.",
        result,
    )


def _dry_run(repo: Path, secrets: list[str], keys: list[PurgedKey],
             options: PurgeOptions) -> PurgeResult:
    """Rewrite a throwaway mirror in a private temp folder to count the changes."""
    scratch = Path(tempfile.mkdtemp(prefix="incident-purge-dry-run-"))
    try:
        mirror = mirror_clone(repo, scratch / "mirror.git")
        rewrite = rewrite_history(mirror, secrets,
                                  RewriteOptions(options.replacement, cleanup=False))
        result = _result(repo, keys, None, rewrite, None, None)
    finally:
        # The scratch copy holds the keys: it must not outlive the dry run.
        shutil.rmtree(scratch, ignore_errors=True)
    return replace(result, dry_run=True, rewritten=None, commit_map_path=None)


def _secrets(repo: Path, options: PurgeOptions) -> list[str]:
    if options.secrets is not None:
        return sorted(set(options.secrets))
    from incident.history import scan_repository

    report = scan_repository(repo)
    if report.incomplete:
        logger.warning("the scan of %s could not read every object; keys there "
                       "cannot be purged", repo)
    return sorted({f.secret for f in report.findings
                   if f.kind.is_secret and f.ignored is None})


def _target_url(repo: Path, options: PurgeOptions) -> str | None:
    """The push URL: required with --push, optional (for the commands) without."""
    try:
        return remote_url(repo, options.remote)
    except UsageError:
        if options.push:
            raise
        return None


def _workdir(repo: Path, options: PurgeOptions, journal: Journal | None) -> Path:
    if options.workdir is not None:
        directory = options.workdir.resolve()
    elif journal is not None:
        directory = journal.directory
    else:
        directory = repo.parent / f"{repo.name.removesuffix('.git')}.purge-{_stamp()}"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    # The backup holds the keys: whatever work tree it sits in must never offer
    # to commit it. An incident's folder is kept out with its siblings.
    keep_out_of_git(directory.parent if journal is not None
                    and directory == journal.directory else directory)
    return directory


class _Recorder:
    """Journal events of this purge (a no-op without a journal)."""

    def __init__(self, journal: Journal | None, repo: Path) -> None:
        self.journal = journal
        self.repo = str(repo)

    def __call__(self, event: str, **data: object) -> None:
        if self.journal is not None:
            self.journal.append(STEP, event, repo=self.repo, **data)


def _recorder(journal: Journal | None, repo: Path) -> _Recorder:
    return _Recorder(journal, repo)


def _resume(repo: Path, options: PurgeOptions,
            journal: Journal | None) -> PurgeResult | None:
    """Continue an earlier purge recorded in the journal, without redoing steps.

    A finished rewrite is never redone: if it was not verified yet, it is verified
    now. Anything earlier is redone from the start (the backup of a half-finished
    run is kept where it is). Refs are compared with the first backup this journal
    recorded, which holds the history as it was before any rewrite.
    """
    if journal is None or options.dry_run:
        return None
    rewrites = journal.find(STEP, "rewrite-done", repo=str(repo))
    backups = journal.find(STEP, "backup-done", repo=str(repo))
    if not rewrites or not backups:
        return None
    done_rewrite = rewrites[-1].data
    target = Path(done_rewrite["target"])
    if not target.exists():
        return None
    original = Path(backups[0].data["path"])
    verified = [e for e in journal.find(STEP, "verify-done", repo=str(repo),
                                        clean=True) if e.time >= rewrites[-1].time]
    if verified:
        checked_at = verified[-1].data.get("checked_at", "")
    else:
        checked_at = _verify_resumed(repo, target, original, options, journal)
    url = _target_url(repo, options)
    first_changed = next((e.data["first_changed"] for e in rewrites
                          if e.data.get("first_changed")), [])
    rewrite = _rebuild_rewrite(target, original, Path(done_rewrite["commit_map"]),
                               list(first_changed), done_rewrite.get("detail") or {})
    started = journal.find(STEP, "rewrite-started", repo=str(repo))
    keys = [PurgedKey(k["redacted"], k["fingerprint"])
            for k in (started[-1].data.get("keys", []) if started else [])]
    base = _result(repo, keys, original, rewrite,
                   VerifyResult(clean=True, checked_at=checked_at), url)
    base = replace(base, resumed=True)
    previous = _journaled_outcomes(journal, repo, url)
    done = {o.ref_id for o in previous if o.ok}
    # NOTE: refs are planned against what the remote holds now, so a ref pushed
    # before the crash is not sent again, a refused one is retried, and one that
    # somebody else moved since is left alone and reported.
    remote_values = remote_refs(repo, url) if options.push and url else None
    steps, skipped = plan_push(rewrite, remote_values)
    return _finish(base, steps, skipped, options, url, remote_values,
                   _recorder(journal, repo), done, previous)


def _journaled_outcomes(journal: Journal, repo: Path,
                        url: str | None) -> list[PushOutcome]:
    """The last outcome journaled for each ref an earlier run pushed to url."""
    last: dict[str, PushOutcome] = {}
    shown = redact_text(url) if url else None
    for event in journal.find(STEP, "push-ref", repo=str(repo)):
        data = event.data
        if data.get("remote") not in (None, shown):
            continue  # a push to another remote: this one still needs it
        last[str(data.get("ref_id"))] = PushOutcome(
            str(data.get("name")), str(data.get("action")), bool(data.get("ok")),
            str(data.get("detail") or ""), str(data.get("ref_id") or ""))
    return list(last.values())


def _verify_resumed(repo: Path, target: Path, original: Path,
                    options: PurgeOptions, journal: Journal) -> str:
    """Verify a rewrite that finished before a crash; return when it was checked.

    Raises:
        PurgeVerificationError: a key is still there.
    """
    if options.secrets is not None:
        secrets = sorted(set(options.secrets))
    else:
        # The rewritten copy no longer holds the keys: read them from the backup.
        from incident.history.bundle import scan_bundle

        secrets = sorted({f.secret for f in scan_bundle(original).findings
                          if f.kind.is_secret and f.ignored is None})
    record = _recorder(journal, repo)
    record("verify-started", target=str(target), resumed=True)
    verification = verify_clean(target, secrets)
    record("verify-done", target=str(target), clean=verification.clean,
           remnants=len(verification.remnants), checked_at=verification.checked_at)
    if not verification.clean:
        keys = [PurgedKey(redact(s), fingerprint(s)) for s in secrets]
        raise _verification_error(PurgeResult(
            repository=repo, keys=keys, dry_run=False, backup=original,
            rewritten=target, verification=verification))
    return verification.checked_at


def _rewrite_detail(rewrite: RewriteResult) -> dict[str, Any]:
    """What a resumed run must report of the rewrite, beyond refs and the map."""
    return {
        "blobs_rewritten": rewrite.blobs_rewritten,
        "blobs_recompressed": rewrite.blobs_recompressed,
        "messages_rewritten": rewrite.messages_rewritten,
        "forms": sorted(rewrite.forms),
        "removed_files": [{"path": redact_text(f.path), "commit": f.commit,
                           "reason": f.reason} for f in rewrite.removed_files],
        "signatures_removed": list(rewrite.signatures_removed),
        "submodules": [redact_text(p) for p in rewrite.submodules],
        "lfs_pointers": [redact_text(p) for p in rewrite.lfs_pointers],
        "notes_moved": rewrite.notes_moved,
        "annotated_tags": sorted(redact_text(t) for t in rewrite.annotated_tags),
    }


def _stamp() -> str:
    """UTC time for file names; microseconds, so two purges of one repository in
    the same second do not collide on the backup or mirror name."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _interrupted_run(
    repo: Path, options: PurgeOptions, journal: Journal | None
) -> tuple[Path, float | None] | None:
    """An earlier run of this purge that made its backup but never recorded the
    end of its rewrite: its backup, and when an in-place rewrite of it started."""
    if journal is None:
        return None
    backups = journal.find(STEP, "backup-done", repo=str(repo))
    if not backups or journal.find(STEP, "rewrite-done", repo=str(repo)):
        return None
    backup = Path(backups[0].data["path"])
    if not backup.is_file():
        return None
    started = journal.find(STEP, "rewrite-started", repo=str(repo))
    if not (started and options.in_place):
        return backup, None
    moment = datetime.fromisoformat(started[0].time.replace("Z", "+00:00"))
    return backup, moment.timestamp()


def _refs_against_backup(target: Path, backup: Path) -> list[RefChange]:
    """Every ref as the backup (the original) had it and as it is now."""
    before: dict[str, str] = {}
    heads = run_git(target, "bundle", "list-heads", str(backup)).stdout.decode(
        "utf-8", "surrogateescape")
    for line in heads.splitlines():
        sha, _, name = line.partition(" ")
        if name != "HEAD":
            before[name] = sha
    after = list_refs(target)
    return [RefChange(name=redact_text(name), old=before.get(name),
                      new=after.get(name), ref=name)
            for name in sorted(set(before) | set(after))]


def _rebuild_rewrite(target: Path, backup: Path, commit_map_path: Path,
                     first_changed: list[str],
                     detail: dict[str, Any]) -> RewriteResult:
    """What a resumed run needs of the rewrite: refs before/after, the map, and
    the counts journaled when the rewrite finished."""
    commit_map = read_commit_map(commit_map_path) if commit_map_path.exists() else {}
    refs = _refs_against_backup(target, backup)
    return RewriteResult(
        repository=target, commit_map=commit_map, commit_map_path=commit_map_path,
        refs=refs, first_changed_commits=first_changed,
        removed_files=[RemovedFile(**f) for f in detail.get("removed_files", [])],
        blobs_rewritten=int(detail.get("blobs_rewritten", 0)),
        blobs_recompressed=int(detail.get("blobs_recompressed", 0)),
        messages_rewritten=int(detail.get("messages_rewritten", 0)),
        forms=frozenset(detail.get("forms", [])),
        signatures_removed=list(detail.get("signatures_removed", [])),
        submodules=list(detail.get("submodules", [])),
        lfs_pointers=list(detail.get("lfs_pointers", [])),
        notes_moved=int(detail.get("notes_moved", 0)),
        annotated_tags=frozenset(detail.get("annotated_tags", [])),
    )

