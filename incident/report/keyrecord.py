"""One leaked key's record, merged by fingerprint across scan, roll and purge.

Revocation is the first time Stripe was seen rejecting the key, else an explicit
expiry, else the expiry Stripe accepted for later; with none of these the key is
still exposed and its exposure window stays open.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from incident.journal import JournalEvent
from incident.report.clock import (
    describe_duration,
    is_later,
    parse_time,
    seconds_between,
    show_time,
    to_iso,
)
from incident.report.model import (
    Exposure,
    Introduction,
    KeyRecord,
    ManualStep,
    Moment,
    Purge,
    RefSpan,
    Rotation,
    TipExit,
)
from incident.report.select import first_event, last_event


def group_by_fingerprint(
    events: list[JournalEvent],
) -> dict[str, list[JournalEvent]]:
    """Group key events by fingerprint, in the order keys were first met."""
    grouped: dict[str, list[JournalEvent]] = defaultdict(list)
    for event in events:
        if event.event == "rewrite-started":
            for key in event.data.get("keys") or []:
                if isinstance(key, dict) and key.get("fingerprint"):
                    grouped[str(key["fingerprint"])].append(event)
        elif event.data.get("fingerprint"):
            grouped[str(event.data["fingerprint"])].append(event)
    return dict(grouped)


def _redacted_of(events: list[JournalEvent], fp: str) -> str:
    for event in events:
        if event.data.get("fingerprint") == fp and event.data.get("redacted"):
            return str(event.data["redacted"])
        for key in event.data.get("keys") or []:
            if isinstance(key, dict) and key.get("fingerprint") == fp:
                return str(key.get("redacted") or "")
    return f"sha256:{fp[:12]}"


def build_key(
    fp: str,
    events: list[JournalEvent],
    purge: Purge | None,
    manual_steps: tuple[ManualStep, ...],
    now: str,
) -> KeyRecord:
    """Merge the scan, assessment, roll and purge events of one fingerprint."""
    finding = last_event(events, "finding")
    found = finding.data if finding else {}
    introduced = _introduction(found.get("first_seen"))
    steps = tuple(s for s in manual_steps if s.fingerprint == fp)
    rotation = _rotation(events)
    revoked_at, ends_by = _revocation(events, rotation, steps)
    exposure = _exposure(introduced, revoked_at, ends_by, now)
    used = _last_used(events)
    last_used, last_used_ours = used.time, used.may_be_ours
    used_after = (
        False
        if used.never_before_check
        else is_later(last_used, introduced.committer_date)
        if introduced and not last_used_ours
        else None
    )
    present = tuple(map(str, found.get("present_at_tips") or []))
    left = tuple(
        TipExit(
            ref=str(item.get("ref")),
            commit=item.get("commit"),
            time=to_iso(item.get("time")),
        )
        for item in found.get("left_tips") or []
        if isinstance(item, dict)
    )
    left_at = (
        max((t.time for t in left if t.time), default=None) if not present else None
    )
    liveness_event = last_event(events, "liveness-checked")
    contained_at = _contained_at(events, rotation, steps)
    failed = last_event(events, "roll-failed")
    found_key = last_event(events, "key-found")
    record = KeyRecord(
        fingerprint=fp,
        redacted=_redacted_of(events, fp),
        kind=str(found.get("kind") or _kind_from_steps(steps) or "unknown"),
        mode=str(found.get("mode") or "unknown"),
        severity=found.get("severity"),
        introduced=introduced,
        refs=tuple(
            RefSpan(
                name=str(r.get("name")),
                since=to_iso(r.get("since")),
                commit=r.get("commit"),
            )
            for r in found.get("refs") or []
            if isinstance(r, dict)
        ),
        present_at_tips=present,
        left_tips=left,
        left_tips_at=left_at,
        pushed=found.get("pushed") if finding else None,
        liveness=liveness_event.data.get("liveness") if liveness_event else None,
        old_key_id=(
            rotation.old_key_id
            if rotation
            else found_key.data.get("key_id")
            if found_key
            else None
        ),
        last_used=last_used,
        last_used_may_be_ours=last_used_ours,
        last_used_text=_last_used_text(used, used_after),
        used_after_leak=used_after,
        rotation=rotation,
        revoked_at=revoked_at,
        exposure=exposure,
        contained_at=contained_at,
        purged=purge is not None and any(e.event == "rewrite-started" for e in events),
        roll_error=str(failed.data.get("error")) if failed else None,
        manual_steps=tuple(s.step_id for s in steps),
        status="",
        moments=(),
    )
    return _with_story(record, events, purge, steps)


def _kind_from_steps(steps: tuple[ManualStep, ...]) -> str | None:
    return "webhook_secret" if any("webhook" in s.step_id for s in steps) else None


def _introduction(first_seen: object) -> Introduction | None:
    if not isinstance(first_seen, dict):
        return None
    return Introduction(
        commit=first_seen.get("commit"),
        author_name=first_seen.get("author_name"),
        author_email=first_seen.get("author_email"),
        author_date=to_iso(first_seen.get("author_date")),
        committer_date=to_iso(first_seen.get("committer_date")),
    )


# Stripe's clock and ours may disagree by this much; a last_used this close to
# our own first liveness check is counted as possibly ours.
CLOCK_SKEW = timedelta(minutes=2)


@dataclass(frozen=True)
class _LastUsed:
    """What Stripe's last_used says about the leaked key, and how sure we are."""

    time: str | None = None
    may_be_ours: bool = False
    # Stripe said "never used" in a reading taken before our first check.
    never_before_check: bool = False


def _last_used(events: list[JournalEvent]) -> _LastUsed:
    """Stripe's last_used, and whether it may be our own liveness check.

    Our liveness checks (and, with --use-leaked-key, our API calls) authenticate
    with the leaked key, so a last_used can be our own request: calling that
    "used after the leak" would be a false alarm. A reading counts as ours only
    when it falls (within clock skew) in one of our uses that happened before the
    reading was taken; every other reading is someone else's use, whether before
    our first check or between our checks. The latest such reading wins. The
    assess step lists the key before its check, so an empty last_used there
    means nobody had used the key until we did.
    """
    windows = _own_uses(events)
    readings: list[tuple[str, datetime]] = []
    for event in events:
        if event.event not in ("liveness-checked", "key-found", "rotation-requested"):
            continue
        value = to_iso(event.data.get("last_used"))
        # A check's own listing ran before the check started.
        read_at = parse_time(event.data.get("started_at") or event.time)
        if value and read_at:
            readings.append((value, read_at))

    def ours(value: str, read_at: datetime) -> bool:
        moment = parse_time(value)
        return moment is not None and any(
            begin - CLOCK_SKEW <= moment <= end + CLOCK_SKEW
            for begin, end in windows
            if begin < read_at
        )

    theirs = sorted(v for v, at in readings if not ours(v, at))
    if theirs:
        return _LastUsed(theirs[-1])
    first = min(
        (e for e in events if e.event == "liveness-checked"),
        key=lambda e: parse_time(e.data.get("started_at") or e.time) or _NEVER,
        default=None,
    )
    if first is not None and first.data.get("key_id") and not first.data.get(
        "last_used"
    ):
        return _LastUsed(never_before_check=True)
    if readings:
        return _LastUsed(max(v for v, _ in readings), may_be_ours=True)
    return _LastUsed()


_NEVER = datetime.max.replace(tzinfo=UTC)


def _own_uses(events: list[JournalEvent]) -> list[tuple[datetime, datetime]]:
    """When we ourselves used the leaked key: every liveness check, and every
    rotation authenticated with the leaked key itself."""
    uses = []
    for event in events:
        if event.event == "liveness-checked":
            begin = parse_time(event.data.get("started_at") or event.time)
            end = parse_time(event.data.get("checked_at") or event.time)
        elif (event.event == "rotation-requested"
              and event.data.get("credential") == "leaked-key"):
            begin = end = parse_time(event.time)
        else:
            continue
        if begin and end:
            uses.append((begin, end))
    return uses


def _last_used_text(used: _LastUsed, after_leak: bool | None) -> str:
    if used.never_before_check:
        return "never, as Stripe reported before our own liveness check"
    if used.time is None:
        return "not reported by Stripe"
    text = show_time(used.time)
    if used.may_be_ours:
        return f"{text} (read after our own liveness check, so it may be that check)"
    if after_leak:
        return f"{text}: USED AFTER THE LEAK"
    return text


def _rotation(events: list[JournalEvent]) -> Rotation | None:
    accepted = first_event(events, "rotation-accepted")
    if accepted is None:
        return None
    data = accepted.data
    delivered = last_event(events, "delivered")
    confirmed = last_event(events, "new-key-confirmed")
    unconfirmed = last_event(events, "new-key-unconfirmed")
    return Rotation(
        old_key_id=data.get("old_key_id"),
        new_key_id=data.get("new_key_id"),
        new_redacted=data.get("new_redacted"),
        new_fingerprint=data.get("new_fingerprint"),
        accepted_at=to_iso(data.get("accepted_at") or accepted.time),
        delivered_to=tuple(map(str, delivered.data.get("targets") or []))
        if delivered
        else (),
        delivery_failed=tuple(map(str, delivered.data.get("failed") or []))
        if delivered
        else (),
        emergency_file=delivered.data.get("emergency_file") if delivered else None,
        new_key_confirmed=True if confirmed else False if unconfirmed else None,
    )


def _revocation(
    events: list[JournalEvent],
    rotation: Rotation | None,
    steps: tuple[ManualStep, ...],
) -> tuple[str | None, str]:
    """When the leaked key stopped working, and how we know.

    The first observed rejection wins, then an explicit expiry, then an expiry Stripe
    accepted for later, then a webhook secret rolled by hand.
    """
    rejections = [
        to_iso(e.data.get("rejected_at") or e.data.get("checked_at") or e.time)
        for e in events
        if e.event in ("old-key-rejected", "already-revoked")
        or (e.event == "liveness-checked" and e.data.get("liveness") == "revoked")
    ]
    observed = sorted(t for t in rejections if t)
    if observed:
        return observed[0], "rejected"
    if last_event(events, "old-key-still-accepted") is not None:
        # Stripe kept accepting the old key after it should have expired: an
        # expiry on paper is not a revocation.
        return None, "still-accepted"
    expired = first_event(events, "old-key-expired")
    if expired is not None:
        return to_iso(expired.time), "expired"
    scheduled = last_event(events, "old-key-expiry-scheduled")
    expires_at = (scheduled.data.get("expires_at") if scheduled else None) or (
        first_event(events, "rotation-accepted").data.get("old_key_expires_at")
        if rotation
        else None
    )
    if to_iso(expires_at):
        return to_iso(expires_at), "scheduled"
    closed = sorted(s.closed_at for s in steps if s.closed_at)
    if closed:
        return closed[0], "rolled-manually"
    return None, "none"


def _exposure(
    introduced: Introduction | None, revoked_at: str | None, ends_by: str, now: str
) -> Exposure:
    start = introduced.committer_date if introduced else None
    if revoked_at is None:
        so_far = seconds_between(start, now)
        return Exposure(
            start=start,
            end=None,
            seconds=so_far,
            open_ended=True,
            ends_by=ends_by if ends_by == "still-accepted" else "none",
            text=(
                (
                    "STILL EXPOSED: Stripe still accepted the old key after its "
                    "expiry; "
                    if ends_by == "still-accepted"
                    else "STILL EXPOSED: no revocation recorded; "
                )
                + (
                    f"open for {describe_duration(so_far)} so far"
                    if so_far is not None
                    else "start unknown"
                )
            ),
        )
    seconds = seconds_between(start, revoked_at)
    how = {
        "rejected": "until Stripe was seen rejecting it",
        "expired": "until it was expired",
        "scheduled": "until its scheduled expiry",
        "rolled-manually": "until it was rolled in the Dashboard",
    }[ends_by]
    return Exposure(
        start=start,
        end=revoked_at,
        seconds=seconds,
        open_ended=False,
        ends_by=ends_by,
        text=f"{describe_duration(seconds)} from the first commit {how}",
    )


def contains_the_key(event: JournalEvent) -> bool:
    """The event stops the leaked key being usable going forward: it was rotated,
    or Stripe already rejected it."""
    return event.event in ("rotation-accepted", "already-revoked") or (
        event.event == "liveness-checked" and event.data.get("liveness") == "revoked"
    )


def _contained_at(
    events: list[JournalEvent],
    rotation: Rotation | None,
    steps: tuple[ManualStep, ...],
) -> str | None:
    """When the leak stopped being usable going forward: rolled or already revoked."""
    times = [rotation.accepted_at] if rotation else []
    times += [
        to_iso(e.time)
        for e in events
        if contains_the_key(e) and e.event != "rotation-accepted"
    ]
    if steps and all(s.closed_at for s in steps):
        times += [max(s.closed_at for s in steps if s.closed_at)]
    known = sorted(t for t in times if t)
    return known[0] if known else None


def _with_story(
    key: KeyRecord,
    events: list[JournalEvent],
    purge: Purge | None,
    steps: tuple[ManualStep, ...],
) -> KeyRecord:
    """Attach the key's own dated moments and its one-line status."""
    moments: list[Moment] = []

    def add(time: object, label: str, alert: bool = False) -> None:
        stamp = to_iso(time)
        if stamp:
            moments.append(Moment(stamp, label, alert))

    if key.introduced:
        who = key.introduced.author_name or "unknown author"
        add(
            key.introduced.committer_date,
            f"Committed in {(key.introduced.commit or '?')[:12]} by {who}",
        )
    for ref in key.refs:
        add(ref.since, f"Reached {ref.name}", ref.name.startswith("refs/remotes/"))
    for exit_ in key.left_tips:
        add(exit_.time, f"Removed from the tip of {exit_.ref}")
    if key.last_used:
        add(
            key.last_used,
            "USED AFTER THE LEAK (Stripe last_used)"
            if key.used_after_leak
            else "Last used on Stripe (may be our own liveness check)"
            if key.last_used_may_be_ours
            else "Last used on Stripe",
            bool(key.used_after_leak),
        )
    for event in events:
        label = _moment_label(event)
        if label:
            when = event.data.get("rejected_at") or event.data.get("checked_at")
            add(when or event.time, label)
    if key.exposure.ends_by == "scheduled":
        add(key.exposure.end, "Old key expires (scheduled)")
    if purge and key.purged:
        add(purge.rewrite_done_at, "History rewritten without the key")
        if purge.clean:
            add(purge.verify_done_at, "Verified: no copy left in the rewritten history")
    for step in steps:
        add(step.opened_at, f"Manual step opened: {step.title}")
        add(step.closed_at, f"Manual step closed: {step.title}")
    # Every stamp is normalised by to_iso(), so text order is time order.
    moments.sort(key=lambda m: m.time)
    return replace(key, moments=tuple(moments), status=_key_status(key))


def _moment_label(event: JournalEvent) -> str | None:
    data = event.data
    labels = {
        "finding": "Detected by the scan",
        "liveness-checked": f"Stripe says: {data.get('liveness', 'unknown')}",
        "already-revoked": "Stripe already rejects it",
        "rotation-accepted": (
            f"Rotated: new key {data.get('new_key_id', '?')} "
            f"({data.get('new_redacted', '?')})"
        ),
        "delivered": (
            f"New key delivered to {', '.join(data.get('targets') or [])}"
            if data.get("targets")
            else "New key NOT delivered: it waits in the emergency file "
            f"{data.get('emergency_file') or '?'} (0600)"
        ),
        "new-key-confirmed": "New key confirmed working",
        "old-key-expired": "Old key expired",
        "old-key-rejected": "Stripe rejects the old key",
        "old-key-still-accepted": "Stripe still accepted the old key",
        "roll-failed": f"Roll failed: {data.get('error', '?')}",
    }
    return labels.get(event.event)


def _key_status(key: KeyRecord) -> str:
    if key.test_not_rolled:
        return "test mode: not rolled (incident roll --include-test rolls it)"
    if key.exposure.open_ended:
        if key.manual_steps:
            return "still exposed: manual roll pending"
        if key.roll_error:
            return "still exposed: roll failed"
        if key.exposure.ends_by == "still-accepted":
            return "still exposed: Stripe still accepts the old key; expire it now"
        return "still exposed: not revoked"
    if key.exposure.ends_by == "scheduled":
        return "rotated; old key expires at its scheduled time"
    return "revoked"
