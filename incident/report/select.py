"""Pick events out of a journal's event list (latest, earliest, first value)."""

from __future__ import annotations

from incident.journal import JournalEvent


def last_event(events: list[JournalEvent], name: str) -> JournalEvent | None:
    """The latest event with this name, or None."""
    found = [e for e in events if e.event == name]
    return found[-1] if found else None


def first_event(events: list[JournalEvent], name: str) -> JournalEvent | None:
    """The earliest event with this name, or None."""
    return next((e for e in events if e.event == name), None)


def first_value(events: list[JournalEvent], name: str) -> str | None:
    """The first non-empty data[name] among events, as text."""
    return next((str(e.data[name]) for e in events if e.data.get(name)), None)
