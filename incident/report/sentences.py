"""One sentence per journal event, for the actions list of the incident record.

Every event gets a sentence: an event this module does not know is described
generically, never dropped, so the record stays complete as commands grow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from incident.journal import JournalEvent
from incident.redact import short_fingerprint

Describe = Callable[[dict[str, Any]], str]


def _key(data: dict[str, Any]) -> str:
    """Name a key by its redacted form, else by its short fingerprint."""
    if data.get("redacted"):
        return str(data["redacted"])
    if data.get("fingerprint"):
        return f"key sha256:{short_fingerprint(str(data['fingerprint']))}"
    return "the key"


def _commit(sha: object) -> str:
    return str(sha)[:12] if sha else "an unknown commit"


def _count(amount: object, noun: str) -> str:
    number = int(amount) if isinstance(amount, int | float) else 0
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _finding(data: dict[str, Any]) -> str:
    first = data.get("first_seen") or {}
    where = (
        f", first committed in {_commit(first.get('commit'))}"
        f" by {first.get('author_name') or 'unknown'}"
        if first
        else ""
    )
    pushed = "; reached a remote-tracking ref (pushed)" if data.get("pushed") else ""
    return (
        f"Scan found {_key(data)} ({data.get('mode', 'unknown')} "
        f"{data.get('kind', 'key')}){where}{pushed}."
    )


def _scan_done(data: dict[str, Any]) -> str:
    incomplete = (
        "; part of the history could not be read" if data.get("incomplete") else ""
    )
    return (
        f"Scan finished: {_count(data.get('findings'), 'secret')} found in "
        f"{_count(data.get('objects'), 'object')}{incomplete}."
    )


def _liveness(data: dict[str, Any]) -> str:
    state = data.get("liveness", "unknown")
    meaning = {
        "live": "Stripe still accepts it",
        "revoked": "Stripe rejects it",
    }.get(str(state), "its state could not be determined")
    return f"Checked {_key(data)} with Stripe: {meaning}."


def _rotation_accepted(data: dict[str, Any]) -> str:
    return (
        f"Stripe rotated {data.get('old_key_id', 'the old key')} for {_key(data)}: "
        f"new key {data.get('new_key_id', '?')} ({data.get('new_redacted', '?')})."
    )


def _delivered(data: dict[str, Any]) -> str:
    targets = ", ".join(map(str, data.get("targets") or [])) or "no target"
    failed = data.get("failed") or []
    tail = f"; {len(failed)} target(s) failed" if failed else ""
    return f"Delivered new key {data.get('new_key_id', '?')} to {targets}{tail}."


def _push_ref(data: dict[str, Any]) -> str:
    outcome = "done" if data.get("ok") else f"refused ({data.get('detail', '')})"
    return (
        f"Push of {data.get('name', '?')} ({data.get('action', 'update')}): {outcome}."
    )


def _respond_step(verb: str) -> Describe:
    def describe(data: dict[str, Any]) -> str:
        title = data.get("title") or "playbook step"
        extra = data.get("summary") or data.get("error") or data.get("reason") or ""
        return f"{verb} {title}" + (f": {extra}" if extra else ".")

    return describe


# Keyed by event name; a (step, event) pair wins over the event name alone.
SENTENCES: dict[str | tuple[str, str], Describe] = {
    ("respond", "started"): lambda d: (
        f"Response started on {d.get('repo', '?')} with playbook "
        f"{d.get('playbook_name', '?')}" + (" (dry run)." if d.get("dry_run") else ".")
    ),
    ("respond", "resumed"): lambda d: f"Response resumed from {d.get('from_step')}.",
    ("respond", "finished"): lambda d: f"Response finished: {d.get('status', '?')}.",
    ("respond", "stopped"): lambda d: (
        f"Response stopped at {d.get('at_step', '?')}: {d.get('reason', '')}."
    ),
    ("respond", "options-changed"): lambda d: (
        "Delivery targets replaced on resume: "
        + ", ".join(map(str, d.get("deliver") or [])) + "."
    ),
    "step-declined": _respond_step("Declined"),
    "fetched": lambda d: (
        f"Fetched {', '.join(map(str, d.get('remotes') or []))} before the scan."
    ),
    "fetch-failed": lambda d: (
        f"Could not fetch {', '.join(map(str, d.get('remotes') or []))}: "
        f"{d.get('error', '?')}; refs there were not scanned."
    ),
    "code-fixed": lambda d: f"Code changed: {d.get('summary', '?')}.",
    "step-started": _respond_step("Started"),
    "step-done": _respond_step("Finished"),
    "step-failed": _respond_step("Failed"),
    "step-skipped": _respond_step("Skipped"),
    "manual-step-pending": lambda d: (
        f"Manual step opened: {d.get('title') or d.get('step_id')} "
        f"(id {d.get('step_id')})."
    ),
    "manual-step-done": lambda d: (
        f"Manual step {d.get('step_id')} closed"
        + (f": {d['note']}." if d.get("note") else ".")
    ),
    "finding": _finding,
    "scan-done": _scan_done,
    "liveness-checked": _liveness,
    "roll-started": lambda d: (
        f"Roll started for {_count(len(d.get('keys') or []), 'key')}"
        f" (grace {d.get('grace_minutes', '?')} min)"
        + (", dry run." if d.get("dry_run") else ".")
    ),
    "already-revoked": lambda d: f"Stripe already rejects {_key(d)}; nothing to roll.",
    "key-not-found": lambda d: f"No API key object matches {_key(d)}.",
    "key-ambiguous": lambda d: (
        f"Several API keys could be {_key(d)}: "
        f"{', '.join(map(str, d.get('key_ids') or []))}; not rolled."
    ),
    "key-found": lambda d: (
        f"Found {d.get('key_id', '?')} for {_key(d)}; Stripe last saw it used "
        f"{d.get('last_used') or 'never'}."
    ),
    "rotation-requested": lambda d: (
        f"Asked Stripe to rotate {d.get('key_id', '?')} ({_key(d)})."
    ),
    "rotation-accepted": _rotation_accepted,
    "delivered": _delivered,
    "rotation-key-destroyed": lambda d: "Destroyed the one-time rotation key file.",
    "new-key-confirmed": lambda d: f"New key {d.get('new_key_id', '?')} works.",
    "new-key-unconfirmed": lambda d: (
        f"New key {d.get('new_key_id', '?')} could not be confirmed "
        f"({d.get('liveness', 'unknown')})."
    ),
    "old-key-expiry-scheduled": lambda d: (
        f"Old key {d.get('old_key_id', '?')} scheduled to expire at "
        f"{d.get('expires_at') or 'an unknown time'}."
    ),
    "old-key-expire-requested": lambda d: (
        f"Asked Stripe to expire old key {d.get('old_key_id', '?')} now."
    ),
    "old-key-expired": lambda d: f"Old key {d.get('old_key_id', '?')} expired.",
    "old-key-rejected": lambda d: (
        f"Stripe now rejects old key {d.get('old_key_id', '?')} ({_key(d)})."
    ),
    "old-key-still-accepted": lambda d: (
        f"Stripe still accepted old key {d.get('old_key_id', '?')} at "
        f"{d.get('checked_until', '?')}."
    ),
    "roll-failed": lambda d: f"Roll of {_key(d)} failed: {d.get('error', '?')}.",
    "backup-started": lambda d: f"Backing up the repository to {d.get('path')}.",
    "backup-done": lambda d: f"Backup written to {d.get('path')}.",
    "rewrite-started": lambda d: (
        f"Rewriting history of {d.get('target')} to remove "
        f"{_count(len(d.get('keys') or []), 'key')}."
    ),
    "rewrite-done": lambda d: (
        f"History rewritten: {_count(d.get('commits_rewritten'), 'commit')} changed."
    ),
    "verify-started": lambda d: f"Verifying {d.get('target')} holds no key.",
    "verify-done": lambda d: (
        "Verified: no copy of any key left."
        if d.get("clean")
        else f"Verification found {_count(d.get('remnants'), 'remnant')}."
    ),
    "push-skipped": lambda d: "Nothing pushed: this clone has no remote.",
    "push-started": lambda d: (
        f"Pushing {_count(d.get('refs'), 'ref')} to {d.get('remote')}."
    ),
    "push-ref": _push_ref,
    "push-done": lambda d: (
        f"Push to {d.get('remote')} finished; "
        f"{_count(d.get('refused'), 'ref')} refused."
    ),
    "report-written": lambda d: (
        f"Wrote the {d.get('format')} report to {d.get('path')}."
    ),
}


def describe_event(event: JournalEvent, names: dict[str, str] | None = None) -> str:
    """One human sentence saying what this journal event records.

    Args:
        names: redacted form by fingerprint, for events that carry only the
            fingerprint (``rotation-accepted``, ``old-key-rejected``).
    """
    describe = SENTENCES.get((event.step, event.event)) or SENTENCES.get(event.event)
    if describe is None:
        return f"{event.step}: {event.event.replace('-', ' ')} (no description)."
    data = event.data
    known = (names or {}).get(str(data.get("fingerprint")))
    if known and not data.get("redacted"):
        data = {**data, "redacted": known}
    try:
        return describe(data)
    except (KeyError, TypeError, ValueError):
        # NOTE: a malformed event still appears in the record, described generically.
        return f"{event.step}: {event.event.replace('-', ' ')}."
