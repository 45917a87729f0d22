"""The sandbox's in-memory Stripe account: API keys, idempotent responses, faults.

Everything the HTTP layer does goes through SandboxState under one lock, so tests can
assert on exactly what happened (how many rotations, which key minted which).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

FAULT_KINDS = ("401", "429", "500", "slow", "drop-after-apply")


def iso(epoch: float) -> str:
    """A v2 timestamp: ISO 8601, UTC, millisecond precision, Z suffix."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def redacted_token(secret: str) -> str:
    """Stripe's display form of a secret key: ``sk_live_...wXyZ``."""
    prefix = secret[:8] if secret[:3] in {"sk_", "rk_", "pk_"} else secret[:6]
    return f"{prefix}...{secret[-4:]}"


def mint_secret(prefix: str, length: int = 99) -> str:
    """A fresh random key body after prefix, shaped like Stripe's current keys."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


@dataclass
class SandboxKey:
    """One API key the sandbox knows; ``secret`` is the value that authenticates."""

    id: str
    secret: str = field(repr=False)
    livemode: bool
    created: float
    name: str | None = None
    note: str | None = None
    expires_at: float | None = None
    last_used: float | None = None
    # NOTE: real expiry can take effect with a delay; the sandbox models it so the
    # client's polling for "old key rejected" is exercised.
    rejection_lag: float = 0.0

    @property
    def key_type(self) -> str:
        return "publishable_key" if self.secret.startswith("pk_") else "secret_key"

    def is_expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def authenticates(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at + self.rejection_lag

    def to_api(
        self, now: float, *, reveal: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The v2.iam.api_key object, as the API would return it."""
        body: dict[str, Any] = {
            "id": self.id,
            "object": "v2.iam.api_key",
            "created": iso(self.created),
            "expires_at": iso(self.expires_at) if self.expires_at else None,
            "ip_allowlist": [],
            "last_used": iso(self.last_used) if self.last_used else None,
            "livemode": self.livemode,
            "managed_by": None,
            "name": self.name,
            "note": self.note,
            "status": "expired" if self.is_expired(now) else "active",
            "type": self.key_type,
        }
        if self.key_type == "publishable_key":
            body["publishable_key"] = {"token": self.secret}
            return body
        secret_key: dict[str, Any] = {
            "secret_token_redacted": redacted_token(self.secret)
        }
        if not self.livemode:
            # Test-mode secrets can be revealed again, so the API returns them.
            secret_key["token"] = self.secret
        secret_key.update(reveal or {})
        body["secret_key"] = secret_key
        return body


@dataclass
class Fault:
    """A fault to inject on the next matching requests.

    Attributes:
        kind: one of FAULT_KINDS.
        method: ``GET``/``POST`` or None for any.
        path_contains: substring of the request path, or None for any.
        times: how many matching requests it applies to.
        delay: seconds to wait, for ``slow``.
    """

    kind: str
    method: str | None = None
    path_contains: str | None = None
    times: int = 1
    delay: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path_contains is None or self.path_contains in path
        )


@dataclass
class Rotation:
    """A rotation the sandbox applied: the old key, the new one, when."""

    old_key_id: str
    new_key_id: str
    at: float
    expire_in_minutes: int


@dataclass
class SavedResponse:
    """A response kept for idempotent replay, with the request it answered."""

    status: int
    body: bytes
    request_hash: str


class SandboxState:
    """The sandbox account: keys by id, saved idempotent responses, pending faults."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self.keys: dict[str, SandboxKey] = {}
        self.rotations: list[Rotation] = []
        self.expirations: list[str] = []
        self.idempotent: dict[tuple[str, str], SavedResponse] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.rejection_lag = 0.0
        self.lock = threading.RLock()

    # -- keys ---------------------------------------------------------------

    def add_key(
        self,
        secret: str,
        *,
        key_id: str | None = None,
        name: str | None = None,
        created: float | None = None,
    ) -> SandboxKey:
        """Register a secret as an active key (id derived from it unless given)."""
        with self.lock:
            key = SandboxKey(
                id=key_id or derive_key_id(secret),
                secret=secret,
                livemode="_live_" in secret[:8],
                created=created if created is not None else time.time() - 86400,
                name=name,
            )
            self.keys[key.id] = key
            return key

    def key_for_secret(self, secret: str) -> SandboxKey | None:
        with self.lock:
            for key in self.keys.values():
                if secrets.compare_digest(key.secret, secret):
                    return key
            return None

    def rotations_of(self, key_id: str) -> list[Rotation]:
        """Every rotation applied to key_id (a test asserts there is exactly one)."""
        with self.lock:
            return [r for r in self.rotations if r.old_key_id == key_id]

    # -- faults -------------------------------------------------------------

    def inject(
        self,
        kind: str,
        *,
        method: str | None = None,
        path_contains: str | None = None,
        times: int = 1,
        delay: float = 0.0,
    ) -> Fault:
        """Queue a fault for the next `times` requests that match."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; choose from {FAULT_KINDS}")
        fault = Fault(kind, method, path_contains, times, delay)
        with self.lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, method: str, path: str) -> Fault | None:
        """Consume one use of the first fault matching this request."""
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
            return None


def derive_key_id(secret: str) -> str:
    """A stable key id for a seeded secret, so runs and tests are reproducible."""
    digest = hashlib.sha256(b"sandbox-key:" + secret.encode()).hexdigest()
    return "ak_" + digest[:24]


def derive_account_id(secrets_: list[str]) -> str:
    """A stable account id for a set of seeded secrets."""
    digest = hashlib.sha256("\n".join(sorted(secrets_)).encode()).hexdigest()
    return "acct_" + digest[:16]
