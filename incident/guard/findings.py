"""What the guard reports: one finding per secret a commit or push would add."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from incident.detect.content import KeyMatch, scan_bytes
from incident.detect.secret import ClassifiedSecret


def secret_matches(data: bytes) -> list[KeyMatch]:
    """Real secrets in data: placeholders and publishable keys do not block."""
    return [m for m in scan_bytes(data) if m.ignored is None and m.kind.is_secret]


@dataclass(frozen=True)
class GuardFinding(ClassifiedSecret):
    """One secret a commit or push would add (or carries over).

    Attributes:
        secret: the exact value; never shown, never serialised.
        path: the file, or None for a commit or tag message.
        line: 1-based line in the object.
        encoding: how it is stored (plain, base64, utf-16, ...).
        object_id: the blob, commit or tag holding it.
        commit: for a push, the first pushed commit that adds it.
        allowed: the allowlist's reason when the fingerprint is allowlisted.
        existing: True when the previous version of the file already held it.
    """

    secret: str = field(repr=False)
    path: str | None
    line: int
    encoding: str
    object_id: str
    commit: str | None = None
    allowed: str | None = None
    existing: bool = False





    @property
    def blocks(self) -> bool:
        return self.allowed is None and not self.existing

    @property
    def where(self) -> str:
        """``path:line``, or ``commit message of abc123``."""
        if self.path is None:
            return f"message of {self.object_id[:12]}"
        return f"{self.path}:{self.line}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "encoding": self.encoding,
            "object": self.object_id,
            "commit": self.commit,
            "kind": str(self.kind),
            "mode": str(self.mode),
            "redacted": self.redacted,
            "fingerprint": self.fingerprint,
            "allowed": self.allowed,
            "existing": self.existing,
            "blocks": self.blocks,
        }


@dataclass
class GuardResult:
    """What the guard found in one commit or push."""

    what: str  # "staged changes" or "push to origin (2 refs)"
    findings: list[GuardFinding] = field(default_factory=list)
    objects: int = 0
    seconds: float = 0.0

    @property
    def blocking(self) -> list[GuardFinding]:
        return [f for f in self.findings if f.blocks]

    @property
    def blocked(self) -> bool:
        return bool(self.blocking)

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked": self.what,
            "blocked": self.blocked,
            "objects": self.objects,
            "seconds": round(self.seconds, 3),
            "findings": [f.to_dict() for f in self.findings],
        }
