"""What an audit returns: checks with a status each, and the go / no-go verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from incident.errors import ExitCode


class Status(StrEnum):
    """The outcome of one check, or of one thing a check found."""

    PASS = "pass"
    WARN = "warn"
    UNKNOWN = "unknown"
    FAIL = "fail"


# Worst first: the status of a check is that of its worst item.
_SEVERITY = {Status.PASS: 0, Status.WARN: 1, Status.UNKNOWN: 2, Status.FAIL: 3}


def worst(statuses: list[Status], default: Status = Status.PASS) -> Status:
    """Return the most serious status (fail > unknown > warn > pass)."""
    return max(statuses, key=_SEVERITY.__getitem__, default=default)


def sort_items(items: list[Item]) -> list[Item]:
    """Worst first, then by place."""
    order = {Status.FAIL: 0, Status.UNKNOWN: 1, Status.WARN: 2, Status.PASS: 3}
    return sorted(items, key=lambda item: (order[item.status], item.where))


class Verdict(StrEnum):
    """The answer to "may this repository be published / the incident closed?"."""

    GO = "go"
    NO_GO = "no-go"
    UNDECIDED = "could not decide"

    @property
    def exit_code(self) -> ExitCode:
        return {
            Verdict.GO: ExitCode.OK,
            Verdict.NO_GO: ExitCode.FINDINGS,
            Verdict.UNDECIDED: ExitCode.USAGE,
        }[self]


@dataclass(frozen=True)
class Item:
    """One thing a check found: where it is and what it is (redacted)."""

    status: Status
    where: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"status": str(self.status), "where": self.where, "detail": self.detail}


@dataclass
class Check:
    """One audit check.

    Attributes:
        id: stable identifier (``history``, ``hardcoded-keys``...).
        title: what was checked, for the checklist.
        status: the worst status among items, or the check's own verdict.
        summary: what it found, in one sentence.
        why: why it matters.
        fix: what to do about it (empty when it passed).
        items: the places it found something, worst first.
    """

    id: str
    title: str
    status: Status
    summary: str
    why: str
    fix: str = ""
    items: list[Item] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": str(self.status),
            "summary": self.summary,
            "why": self.why,
            "fix": self.fix,
            "items": [item.to_dict() for item in self.items],
        }


@dataclass
class AuditReport:
    """Every check of one repository and the verdict they add up to."""

    repository: str
    checks: list[Check] = field(default_factory=list)
    audited_at: str = ""

    @property
    def verdict(self) -> Verdict:
        statuses = [check.status for check in self.checks]
        if Status.FAIL in statuses:
            return Verdict.NO_GO
        if Status.UNKNOWN in statuses:
            return Verdict.UNDECIDED
        return Verdict.GO

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": "incident",
            "repository": self.repository,
            "audited_at": self.audited_at,
            "verdict": str(self.verdict),
            "exit_code": int(self.verdict.exit_code),
            "checks": [check.to_dict() for check in self.checks],
        }
