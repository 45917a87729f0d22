"""The incident timeline for the record, built from the journal alone.

The repository may have been rewritten by the time a report is asked for, so every
fact here comes from journal events: the scan's findings, Stripe's answers during
the roll, and the purge. Keys are joined across steps by their SHA-256 fingerprint;
no secret value is ever read or held.
"""

from __future__ import annotations

import shlex
from dataclasses import replace

from incident.journal import Journal, JournalEvent, utc_now
from incident.report.clock import describe_duration, seconds_between, to_iso
from incident.report.keyrecord import build_key, group_by_fingerprint
from incident.report.model import (
    FORMAT_VERSION,
    Action,
    Incident,
    KeyRecord,
    ManualStep,
    Purge,
    Summary,
    Timeline,
)
from incident.report.purge import build_purge
from incident.report.select import first_value, last_event
from incident.report.sentences import describe_event

__all__ = ["FORMAT_VERSION", "Timeline", "build_timeline"]


def build_timeline(journal: Journal, now: str | None = None) -> Timeline:
    """Read the journal once and assemble the incident record.

    Args:
        journal: the incident's journal; nothing else is read except filter-repo's
            commit map, when the file the journal names is still there.
        now: the report time (UTC ISO); the current time by default.
    """
    events = journal.events()
    generated_at = to_iso(now or utc_now()) or ""
    manual_steps = build_manual_steps(events)
    purge = build_purge(events)
    by_key = group_by_fingerprint(events)
    keys = tuple(
        build_key(fp, key_events, purge, manual_steps, generated_at)
        for fp, key_events in by_key.items()
    )
    names = {key.fingerprint: key.redacted for key in keys}
    actions = tuple(
        Action(
            time=to_iso(e.time) or e.time,
            actor=e.actor,
            step=e.step,
            event=e.event,
            description=describe_event(e, names),
        )
        for e in events
    )
    summary = build_summary(journal, events, keys, purge, manual_steps)
    incident = Incident(
        id=journal.incident_id,
        repo=first_value(events, "repo"),
        directory=str(journal.directory),
        operators=tuple(dict.fromkeys(e.actor for e in events if e.actor)),
        opened_at=to_iso(events[0].time) if events else None,
        closed_at=_closed_at(events, summary),
    )
    return Timeline(
        incident=incident,
        keys=keys,
        purge=purge,
        actions=actions,
        manual_steps=manual_steps,
        summary=summary,
        generated_at=generated_at,
    )


def build_manual_steps(events: list[JournalEvent]) -> tuple[ManualStep, ...]:
    """Every manual step opened, matched with a later ``manual-step-done``."""
    steps: dict[str, ManualStep] = {}
    for event in events:
        step_id = event.data.get("step_id")
        if not step_id:
            continue
        step_id = str(step_id)
        if event.event == "manual-step-pending" and step_id not in steps:
            steps[step_id] = ManualStep(
                step_id=step_id,
                title=str(event.data.get("title") or step_id),
                step=event.step,
                opened_at=to_iso(event.time),
                opened_by=event.actor,
                instructions=tuple(map(str, event.data.get("instructions") or [])),
                fingerprint=event.data.get("fingerprint"),
            )
        elif event.event == "manual-step-done" and step_id in steps:
            steps[step_id] = replace(
                steps[step_id],
                closed_at=to_iso(event.time),
                closed_by=event.actor,
                note=event.data.get("note"),
            )
    return tuple(steps.values())


def build_summary(
    journal: Journal,
    events: list[JournalEvent],
    keys: tuple[KeyRecord, ...],
    purge: Purge | None,
    manual_steps: tuple[ManualStep, ...],
) -> Summary:
    """Detection to containment, the state of each phase, and the next steps."""
    detected = [
        to_iso(e.time)
        for e in events
        if e.step == "detect" and e.event in ("scan-done", "step-done")
    ] or [to_iso(e.time) for e in events if e.event == "finding"]
    detected_at = min((t for t in detected if t), default=None)
    # Live keys (and any key someone chose to roll) decide containment.
    scope = [k for k in keys if not k.test_not_rolled]
    contained = bool(keys) and all(k.contained_at for k in scope)
    contained_at = (
        max((k.contained_at for k in scope if k.contained_at), default=None)
        if contained
        else None
    )
    span = seconds_between(detected_at, contained_at)
    open_steps = [s for s in manual_steps if s.is_open]
    finished = last_event([e for e in events if e.step == "respond"], "finished")
    pushed = None
    if purge and (purge.pushes or purge.push_done_at):
        pushed = purge.push_done_at is not None and not purge.push_refused
    if pushed is not True and any(
        s.step_id == "push-by-hand" and not s.is_open for s in manual_steps
    ):
        pushed = True  # the operator pushed with the printed commands
    nowhere_to_push = any(e.event == "push-skipped" for e in events)
    summary = Summary(
        detected_at=detected_at,
        contained_at=contained_at,
        detection_to_containment_seconds=span,
        detection_to_containment=(
            describe_duration(span)
            if contained and scope
            else "no live key to contain"
            if contained
            else "not contained yet"
            if keys
            else "no key recorded"
        ),
        contained=contained,
        revoked=bool(keys) and not any(k.exposure.open_ended for k in scope),
        eradicated=bool(purge and purge.rewrite_done_at),
        verified=bool(purge and purge.clean),
        pushed=pushed,
        open_manual_steps=len(open_steps),
        used_after_leak=tuple(k.redacted for k in keys if k.used_after_leak),
        still_exposed=tuple(k.redacted for k in scope if k.exposure.open_ended),
        test_keys_not_rolled=tuple(k.redacted for k in keys if k.test_not_rolled),
        history_complete=history_complete(events),
        push_needed=bool(purge and purge.rewrite_done_at) and not nowhere_to_push,
        respond_status=finished.data.get("status") if finished else None,
        next_steps=(),
    )
    repo = first_value(events, "repo")
    return replace(
        summary,
        next_steps=plan_next_steps(
            journal,
            repo,
            keys,
            purge,
            summary,
            nowhere_to_push=nowhere_to_push,
        ),
    )


def plan_next_steps(
    journal: Journal,
    repo: str | None,
    keys: tuple[KeyRecord, ...],
    purge: Purge | None,
    summary: Summary,
    nowhere_to_push: bool = False,
) -> tuple[str, ...]:
    """What the operator should do next, each step a runnable command or action."""
    steps: list[str] = []
    if not summary.history_complete:
        steps.append(
            "Part of the history could not be read (or a remote could not be "
            "fetched): keys there were neither rolled nor purged. Run incident scan "
            f"{repo or 'REPO'} to see what, fix it, and respond again."
        )
    steps += [
        f"{key.redacted} was used after it was committed: review the Stripe request "
        "logs (Developers > Logs) for requests you do not recognise."
        for key in keys
        if key.used_after_leak
    ]
    steps += [
        f"Roll {key.redacted}: "
        + journal.command("roll", shlex.quote(repo or "REPO"))
        for key in keys
        if key.exposure.open_ended and not key.manual_steps and not key.test_not_rolled
        and key.exposure.ends_by != "still-accepted"
    ]
    steps += [
        f"Stripe still accepted {key.redacted} after it was rotated: expire the old "
        "key in the Dashboard (Developers > API keys) now, then check again: "
        + journal.command("roll", shlex.quote(repo or "REPO"))
        for key in keys
        if key.exposure.ends_by == "still-accepted"
    ]
    steps += [
        f"{key.redacted} is a test-mode key and was not rolled; it reaches only test "
        "data, but roll it too if that matters: "
        + journal.command("roll", shlex.quote(repo or "REPO"), "--include-test")
        for key in keys
        if key.test_not_rolled
    ]
    steps += [
        f"Close manual step {step_id}: "
        + journal.command("step", "done", step_id)
        for key in keys
        for step_id in key.manual_steps
        if key.exposure.open_ended
    ]
    if keys and purge is None:
        steps.append(f"Remove the keys from history: incident purge {repo or 'REPO'}")
    elif purge is not None and not purge.clean:
        steps.append(
            "The rewrite is not verified clean: run incident purge "
            f"{purge.repo or repo or 'REPO'} again."
        )
    elif purge is not None and not summary.pushed and not nowhere_to_push:
        steps.append(
            "Push the rewritten history: incident purge --push (or run the push "
            "commands it printed), then ask the host to drop cached old commits."
        )
    return tuple(steps)


def history_complete(events: list[JournalEvent]) -> bool:
    """The last scan read everything and the last fetch of the remotes worked."""
    scans = [e for e in events if e.event == "scan-done"]
    fetches = [e for e in events if e.event in ("fetched", "fetch-failed")]
    return not (scans and scans[-1].data.get("incomplete")) and not (
        fetches and fetches[-1].event == "fetch-failed"
    )


def is_closed(summary: Summary) -> bool:
    """Contained, revoked, rewritten, verified, pushed, and no manual step open."""
    return (
        summary.contained
        and summary.history_complete
        and summary.revoked
        and summary.verified
        and (summary.pushed is True or not summary.push_needed)
        and summary.open_manual_steps == 0
    )


def _closed_at(events: list[JournalEvent], summary: Summary) -> str | None:
    """The time of the last response event, once the incident is closed."""
    if not is_closed(summary):
        return None
    work = [e for e in events if e.step != "record"]
    return to_iso(work[-1].time) if work else None
