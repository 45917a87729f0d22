"""What rolling takes and returns: leaked keys, options, and one result per key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from incident.detect.rules import KeyKind, Mode, classify
from incident.redact import SecretView

MAX_GRACE_MINUTES = 10080  # Stripe's limit for expire_current_key_in_minutes
PREVIEW_VERSION = "2026-10-14.preview"


class RollStatus(StrEnum):
    """The outcome of rolling one key."""

    ROLLED = "rolled"
    ALREADY_REVOKED = "already-revoked"
    NOT_FOUND = "not-found"
    AMBIGUOUS = "ambiguous"
    MANUAL_PENDING = "manual-pending"
    FAILED = "failed"
    DRY_RUN = "dry-run"


class Liveness(StrEnum):
    """What a harmless read with the key itself says about it."""

    LIVE = "live"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class LeakedKey(SecretView):
    """One leaked credential to roll; the value stays out of repr()."""

    secret: str = field(repr=False)
    kind: KeyKind
    mode: Mode
    source: str = ""

    @classmethod
    def from_secret(cls, secret: str, source: str = "") -> LeakedKey:
        """Classify a raw value (for example from ``--key-env``)."""
        kind, mode = classify(secret)
        return cls(secret=secret, kind=kind, mode=mode, source=source)

    @classmethod
    def from_finding(cls, finding: Any) -> LeakedKey:
        """Build from a scanner Finding (anything with secret, kind, mode)."""
        where = ""
        locations = getattr(finding, "locations", None) or []
        if locations:
            first = locations[0]
            where = f"{first.path or first.source}@{(first.commit or '')[:12]}"
        return cls(
            secret=finding.secret, kind=finding.kind, mode=finding.mode, source=where
        )




@dataclass(frozen=True)
class RollOptions:
    """How to roll.

    Attributes:
        api_key: the operator's key (STRIPE_API_KEY) for the calls that find and
            rotate; None means use each leaked key itself (needs use_leaked_key).
        use_leaked_key: the operator agreed to authenticate with the leaked key.
        api_base: another Stripe API base URL (the sandbox), or None for Stripe.
        grace_minutes: how long the old key keeps working (0 = expire now).
        deliver: ``--deliver`` specs (file:, env-file:, aws-secretsmanager:, exec:).
        dry_run: find and plan, call no write endpoint, deliver nothing.
        max_network_retries: retries the stripe client makes on its own.
        retry_seconds: total time budget for retrying 429 and 5xx per call.
        request_timeout: seconds to wait for one HTTP response.
        confirm_timeout: how long to poll for the old key being rejected.
        delivery_attempts: tries per delivery target before the emergency file.
        on_event: called after every journal event with (event, fingerprint); the
            respond command shows progress with it, tests simulate crashes with it.
    """

    api_key: str | None = field(default=None, repr=False)
    use_leaked_key: bool = False
    api_base: str | None = None
    grace_minutes: int = 0
    deliver: tuple[str, ...] = ()
    dry_run: bool = False
    max_network_retries: int = 2
    retry_seconds: float = 30.0
    request_timeout: float = 30.0
    confirm_timeout: float = 60.0
    delivery_attempts: int = 3
    on_event: Callable[[str, str], None] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class RollResult:
    """What happened to one leaked key; holds ids and redacted forms only."""

    fingerprint: str
    redacted: str
    kind: str
    mode: str
    status: RollStatus
    old_key_id: str | None = None
    new_key_id: str | None = None
    rotation_accepted_at: str | None = None
    old_key_rejected_at: str | None = None
    last_used: str | None = None
    delivered_to: list[str] = field(default_factory=list)
    emergency_file: Path | None = None
    message: str = ""
    new_redacted: str | None = None
    old_key_expires_at: str | None = None
    manual_steps: tuple[str, ...] = ()
    not_delivered: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "redacted": self.redacted,
            "kind": self.kind,
            "mode": self.mode,
            "status": str(self.status),
            "old_key_id": self.old_key_id,
            "new_key_id": self.new_key_id,
            "new_redacted": self.new_redacted,
            "rotation_accepted_at": self.rotation_accepted_at,
            "old_key_expires_at": self.old_key_expires_at,
            "old_key_rejected_at": self.old_key_rejected_at,
            "last_used": self.last_used,
            "delivered_to": list(self.delivered_to),
            "emergency_file": str(self.emergency_file) if self.emergency_file else None,
            "message": self.message,
            "manual_steps": list(self.manual_steps),
            "not_delivered": list(self.not_delivered),
        }
