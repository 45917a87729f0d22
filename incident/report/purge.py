"""The purge's record: backup, rewrite, old -> new commits, verification, push."""

from __future__ import annotations

from pathlib import Path

from incident.journal import JournalEvent
from incident.report.clock import to_iso
from incident.report.model import CommitChange, Purge, PushRef
from incident.report.select import first_value, last_event

# Commit-map lines shown in the old -> new summary; the full map stays on disk.
COMMIT_MAP_SAMPLE = 20


def build_purge(events: list[JournalEvent]) -> Purge | None:
    """The latest purge run recorded, or None when history was not rewritten."""
    purge_events = [e for e in events if e.step == "purge"]
    if not purge_events:
        return None
    backup = last_event(purge_events, "backup-done")
    started = last_event(purge_events, "rewrite-started")
    done = last_event(purge_events, "rewrite-done")
    verify = last_event(purge_events, "verify-done")
    push_done = last_event(purge_events, "push-done")
    rewrite = done.data if done else {}
    pushes = _pushes(purge_events)
    remotes = list(dict.fromkeys(
        str(e.data["remote"]) for e in purge_events
        if e.event == "push-started" and e.data.get("remote")))
    first_changed = tuple(map(str, rewrite.get("first_changed") or []))
    commit_map = rewrite.get("commit_map")
    return Purge(
        repo=first_value(purge_events, "repo"),
        target=rewrite.get("target")
        or (started.data.get("target") if started else None),
        backup=rewrite.get("backup") or (backup.data.get("path") if backup else None),
        backup_done_at=to_iso(backup.time) if backup else None,
        rewrite_started_at=to_iso(started.time) if started else None,
        rewrite_done_at=to_iso(done.time) if done else None,
        commits_rewritten=rewrite.get("commits_rewritten"),
        refs_changed=rewrite.get("refs_changed"),
        removed_files=rewrite.get("removed_files"),
        first_changed=first_changed,
        commit_map=commit_map,
        commit_changes=read_commit_changes(commit_map, first_changed),
        verify_done_at=to_iso(verify.time) if verify else None,
        clean=verify.data.get("clean") if verify else None,
        remnants=verify.data.get("remnants") if verify else None,
        remote=remotes[0] if remotes else None,
        remotes=tuple(remotes),
        pushes=pushes,
        push_done_at=to_iso(push_done.time) if push_done else None,
        # Per remote and ref, the last attempt decides: a retried ref is not
        # refused, and a refusal on one remote is not hidden by another's success.
        push_refused=sum(1 for ref in _last_per_ref(pushes) if not ref.ok)
        if push_done
        else None,
    )


def _pushes(events: list[JournalEvent]) -> tuple[PushRef, ...]:
    """Every ref pushed, with the remote it went to (push-ref events written before
    remotes were recorded per ref take the remote of their push-started)."""
    rows = []
    remote = None
    for event in events:
        if event.event == "push-started":
            remote = event.data.get("remote")
        elif event.event == "push-ref":
            rows.append(PushRef(
                name=str(event.data.get("name")),
                action=event.data.get("action"),
                ok=bool(event.data.get("ok")),
                detail=event.data.get("detail"),
                time=to_iso(event.time),
                remote=event.data.get("remote") or remote,
            ))
    return tuple(rows)


def _last_per_ref(pushes: tuple[PushRef, ...]) -> list[PushRef]:
    last: dict[tuple[str | None, str], PushRef] = {}
    for ref in pushes:
        last[(ref.remote, ref.name)] = ref
    return list(last.values())


def read_commit_changes(
    commit_map: object, first_changed: tuple[str, ...]
) -> tuple[CommitChange, ...]:
    """Old -> new ids of the first changed commits, from filter-repo's commit map.

    NOTE: the map is read only when the file the journal names still exists; the
    report then shows the first changed commits without their new ids.
    """
    if not commit_map or not first_changed:
        return ()
    path = Path(str(commit_map))
    if not path.is_file():
        return ()
    wanted = set(first_changed[:COMMIT_MAP_SAMPLE])
    found: dict[str, str] = {}
    try:
        with open(path, encoding="ascii") as handle:
            for line in handle:
                parts = line.split()
                if len(parts) == 2 and parts[0] in wanted:
                    found[parts[0]] = parts[1]
    except (OSError, UnicodeDecodeError):
        return ()
    return tuple(CommitChange(old, found[old]) for old in first_changed if old in found)
