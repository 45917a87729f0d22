"""The incident record's data model: frozen dataclasses, with no secret value.

``Timeline.to_dict()`` is the documented JSON format of ``incident report``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Moment:
    """One dated line of a key's own timeline."""

    time: str
    label: str
    alert: bool = False


@dataclass(frozen=True)
class Introduction:
    """The commit that first brought the key into the history."""

    commit: str | None
    author_name: str | None
    author_email: str | None
    author_date: str | None
    committer_date: str | None


@dataclass(frozen=True)
class RefSpan:
    """A ref that carried the key, and since when (the commit that brought it)."""

    name: str
    since: str | None
    commit: str | None


@dataclass(frozen=True)
class TipExit:
    """A branch that once carried the key and no longer does at its tip."""

    ref: str
    commit: str | None
    time: str | None


@dataclass(frozen=True)
class Rotation:
    """Stripe's answer to the roll: the new key is named by id and redacted form."""

    old_key_id: str | None
    new_key_id: str | None
    new_redacted: str | None
    new_fingerprint: str | None
    accepted_at: str | None
    delivered_to: tuple[str, ...] = ()
    delivery_failed: tuple[str, ...] = ()
    # Where the new key waits (0600) when no delivery target took it.
    emergency_file: str | None = None
    new_key_confirmed: bool | None = None


@dataclass(frozen=True)
class Exposure:
    """From the first commit to revocation; open-ended while the key still works.

    Attributes:
        ends_by: ``rejected`` (Stripe was seen rejecting it), ``expired`` (an
            explicit expiry), ``scheduled`` (an expiry Stripe accepted, for later),
            ``rolled-manually`` (a webhook secret rolled in the Dashboard), or
            ``none`` (still exposed).
    """

    start: str | None
    end: str | None
    seconds: int | None
    open_ended: bool
    ends_by: str
    text: str


@dataclass(frozen=True)
class KeyRecord:
    """Everything the journal knows about one leaked key."""

    fingerprint: str
    redacted: str
    kind: str
    mode: str
    severity: str | None
    introduced: Introduction | None
    refs: tuple[RefSpan, ...]
    present_at_tips: tuple[str, ...]
    left_tips: tuple[TipExit, ...]
    left_tips_at: str | None
    pushed: bool | None
    liveness: str | None
    old_key_id: str | None
    last_used: str | None
    # True when the only last_used Stripe gave was read after our own liveness
    # check, so it may be that check rather than anyone else's use.
    last_used_may_be_ours: bool
    # The line a reader sees: the time and what it means, or "never" / "not reported".
    last_used_text: str
    used_after_leak: bool | None
    rotation: Rotation | None
    revoked_at: str | None
    exposure: Exposure
    contained_at: str | None
    purged: bool
    roll_error: str | None
    manual_steps: tuple[str, ...]
    status: str
    moments: tuple[Moment, ...]

    @property
    def test_not_rolled(self) -> bool:
        """A test-mode key left alone on purpose: it cannot move real money."""
        return (
            self.mode == "test"
            and self.rotation is None
            and self.revoked_at is None
            and self.roll_error is None
        )


@dataclass(frozen=True)
class PushRef:
    """One ref pushed (or refused) after the rewrite."""

    name: str
    action: str | None
    ok: bool
    detail: str | None
    time: str | None
    remote: str | None = None


@dataclass(frozen=True)
class CommitChange:
    """An original commit id and the id it has after the rewrite."""

    old: str
    new: str


@dataclass(frozen=True)
class Purge:
    """The history rewrite, its verification and the push (latest run wins)."""

    repo: str | None
    target: str | None
    backup: str | None
    backup_done_at: str | None
    rewrite_started_at: str | None
    rewrite_done_at: str | None
    commits_rewritten: int | None
    refs_changed: int | None
    removed_files: int | None
    first_changed: tuple[str, ...]
    commit_map: str | None
    commit_changes: tuple[CommitChange, ...]
    verify_done_at: str | None
    clean: bool | None
    remnants: int | None
    remote: str | None
    pushes: tuple[PushRef, ...]
    push_done_at: str | None
    # Refs whose last push, to any remote, was refused.
    push_refused: int | None
    remotes: tuple[str, ...] = ()

    @property
    def new_ids(self) -> dict[str, str]:
        """Old commit id -> new id, for the commits the commit map was read for."""
        return {change.old: change.new for change in self.commit_changes}


@dataclass(frozen=True)
class Action:
    """One journal event: when, who, which step, and what it means."""

    time: str
    actor: str | None
    step: str
    event: str
    description: str


@dataclass(frozen=True)
class ManualStep:
    """A step only a person can do, and whether someone has closed it."""

    step_id: str
    title: str
    step: str
    opened_at: str | None
    opened_by: str | None
    instructions: tuple[str, ...]
    fingerprint: str | None
    closed_at: str | None = None
    closed_by: str | None = None
    note: str | None = None

    @property
    def is_open(self) -> bool:
        """True until a ``manual-step-done`` with the same step_id is journaled."""
        return self.closed_at is None


@dataclass(frozen=True)
class Incident:
    """Who handled which incident on which repository, and when."""

    id: str
    repo: str | None
    directory: str
    operators: tuple[str, ...]
    opened_at: str | None
    closed_at: str | None


@dataclass(frozen=True)
class Summary:
    """The state of the response at a glance, and what is left to do."""

    detected_at: str | None
    contained_at: str | None
    detection_to_containment_seconds: int | None
    detection_to_containment: str
    contained: bool
    revoked: bool
    eradicated: bool
    verified: bool
    pushed: bool | None
    open_manual_steps: int
    used_after_leak: tuple[str, ...]
    still_exposed: tuple[str, ...]
    # Test-mode keys the response left unrolled; they do not hold containment open.
    test_keys_not_rolled: tuple[str, ...]
    # False when the scan could not read everything or a remote was not fetched:
    # keys there were neither rolled nor purged.
    history_complete: bool
    # A rewrite was made and there is a remote to push it to.
    push_needed: bool
    respond_status: str | None
    next_steps: tuple[str, ...]


@dataclass(frozen=True)
class Timeline:
    """The whole incident record; ``to_dict()`` is the documented JSON format."""

    incident: Incident
    keys: tuple[KeyRecord, ...]
    purge: Purge | None
    actions: tuple[Action, ...]
    manual_steps: tuple[ManualStep, ...]
    summary: Summary
    generated_at: str
    format_version: int = field(default=FORMAT_VERSION)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: every field, nested records as objects, tuples as lists."""
        data = asdict(self)
        data["manual_steps"] = [
            {**asdict(step), "open": step.is_open} for step in self.manual_steps
        ]
        data["keys"] = [
            {**asdict(key), "test_not_rolled": key.test_not_rolled} for key in self.keys
        ]
        return data

    @property
    def open_steps(self) -> tuple[ManualStep, ...]:
        """Manual steps nobody has closed yet."""
        return tuple(step for step in self.manual_steps if step.is_open)
