"""Times and durations for the incident record: parsed leniently, shown in UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_time(value: object) -> datetime | None:
    """Read an ISO 8601 string (``Z`` or offset) or epoch seconds; None if neither.

    Times without an offset are taken as UTC, as every writer of the journal uses UTC.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    text = str(value).strip()
    if not text:
        return None
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def to_iso(value: object) -> str | None:
    """Normalise a time to ``2024-01-01T08:00:00Z`` (UTC, whole seconds)."""
    moment = parse_time(value)
    if moment is None:
        return None
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def show_time(value: object) -> str:
    """A time for people: ``2024-01-01 08:00:00 UTC``, or ``unknown``."""
    moment = parse_time(value)
    if moment is None:
        return "unknown"
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def seconds_between(start: object, end: object) -> int | None:
    """Whole seconds from start to end, or None when either is unknown."""
    first, last = parse_time(start), parse_time(end)
    if first is None or last is None:
        return None
    return int((last - first).total_seconds())


def is_later(value: object, than: object) -> bool | None:
    """True when value is strictly after than; None when either is unknown."""
    first, second = parse_time(value), parse_time(than)
    if first is None or second is None:
        return None
    return first > second


def describe_duration(seconds: int | None) -> str:
    """``3 d 4 h 5 min``, ``42 s`` or ``unknown``; a negative span says so."""
    if seconds is None:
        return "unknown"
    if seconds < 0:
        return "-" + describe_duration(-seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [(days, "d"), (hours, "h"), (minutes, "min")]
    return " ".join(f"{amount} {unit}" for amount, unit in parts if amount) or "0 min"
