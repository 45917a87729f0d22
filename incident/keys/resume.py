"""Idempotency keys and the cross-incident guard that make a re-run safe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from incident.errors import RefusedError
from incident.journal import Journal
from incident.keys.model import LeakedKey

STEP = "roll"


def idempotency_key(incident_id: str, key_fingerprint: str, step: str) -> str:
    """The Idempotency-Key of one write (a rotate or an expire call).

    The same incident, key and step always give the same value, so a re-run after a
    crash re-sends the request instead of repeating the action.
    """
    return f"{incident_id}-{key_fingerprint[:24]}-{step}"


def plus_minutes(stamp: str, minutes: int) -> str:
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        moment = datetime.now(UTC)
    later = moment + timedelta(minutes=minutes)
    return later.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def refuse_unfinished_elsewhere(journal: Journal, keys: list[LeakedKey]) -> None:
    """Refuse to start a key whose rotation another incident left unfinished.

    That incident's journal holds the idempotency key and the private key needed to
    recover the new secret; a fresh rotation here would orphan it.
    """
    wanted = {key.fingerprint: key for key in keys}
    for sibling in sorted(journal.directory.parent.iterdir()):
        if sibling == journal.directory or not (sibling / "journal.jsonl").is_file():
            continue
        other = Journal(sibling)
        for event in other.find(STEP, "rotation-requested"):
            key = wanted.get(event.data.get("fingerprint", ""))
            if key is None or other.find(
                STEP, "delivered", fingerprint=key.fingerprint
            ):
                continue
            raise RefusedError(
                f"incident {other.incident_id} has an unfinished rotation of "
                f"{key.redacted}; starting another could lose its new key",
                f"Resume it: incident roll --incident {other.incident_id}",
            )
