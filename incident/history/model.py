"""What a history scan returns: findings placed on commits, paths and refs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from incident.detect.rules import KeyKind, Mode
from incident.redact import SecretView, redact_text


@dataclass(frozen=True)
class CommitInfo:
    """Who made a commit and when (ISO 8601, UTC)."""

    sha: str
    author_name: str
    author_email: str
    author_date: str
    committer_date: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "commit": self.sha,
            "author_name": self.author_name,
            "author_email": self.author_email,
            "author_date": self.author_date,
            "committer_date": self.committer_date,
        }


@dataclass(frozen=True)
class Location:
    """One place a secret was found.

    Attributes:
        source: ``file``, ``commit-message``, ``tag-message`` or ``note``.
        object_id: the blob, commit or tag object that holds the text.
        commit: the commit that introduced it (file, note) or carries it (message);
            None for an unreachable blob that no commit holds.
        path: the file path (for a note: the annotated commit's path in the notes
            tree); None for messages.
        line: 1-based line inside the object (inside the member for archives).
        encoding: plain, utf-16, base64, url, json-escape, with ``gzip+``/``zip+``
            in front when compressed, ``lfs+`` when read through an LFS pointer.
        member: the archive member, for zip content.
        reachable: False when only unreachable (dangling) objects hold it.
        tag: the tag name, for tag messages.
        annotated_commit: for notes, the commit the note is attached to.
    """

    source: str
    object_id: str
    commit: str | None
    path: str | None
    line: int
    encoding: str
    member: str | None = None
    reachable: bool = True
    tag: str | None = None
    annotated_commit: str | None = None

    # A path, ref or member name can hold a key itself (a branch named after it):
    # whatever is shown goes through redact_text.
    @property
    def shown_path(self) -> str | None:
        return redact_text(self.path) if self.path is not None else None

    @property
    def shown_member(self) -> str | None:
        return redact_text(self.member) if self.member is not None else None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source": self.source,
            "object": self.object_id,
            "commit": self.commit,
            "path": self.shown_path,
            "line": self.line,
            "encoding": self.encoding,
            "reachable": self.reachable,
        }
        if self.member is not None:
            data["member"] = self.shown_member
        if self.tag is not None:
            data["tag"] = redact_text(self.tag)
        if self.annotated_commit is not None:
            data["annotated_commit"] = self.annotated_commit
        return data


@dataclass
class Finding(SecretView):
    """One distinct secret value with every place it was found.

    The secret itself is kept out of repr() and to_dict(): only the redacted form
    and the fingerprint ever leave the process.
    """

    secret: str = field(repr=False)
    kind: KeyKind
    mode: Mode
    locations: list[Location] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    present_at_tips: list[str] = field(default_factory=list)
    first_seen: CommitInfo | None = None
    ignored: str | None = None



    @property
    def reachable(self) -> bool:
        return any(location.reachable for location in self.locations)

    @property
    def shown_refs(self) -> list[str]:
        """The refs, with any key in a ref name redacted."""
        return [redact_text(ref) for ref in self.refs]

    @property
    def shown_tips(self) -> list[str]:
        return [redact_text(ref) for ref in self.present_at_tips]

    @property
    def severity(self) -> str:
        if not self.kind.is_secret:
            return "low"
        return "critical" if self.mode is Mode.LIVE else "high"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": str(self.kind),
            "mode": str(self.mode),
            "severity": self.severity,
            "redacted": self.redacted,
            "fingerprint": self.fingerprint,
            "reachable": self.reachable,
            "refs": self.shown_refs,
            "present_at_tips": self.shown_tips,
            "first_seen": self.first_seen.to_dict() if self.first_seen else None,
            "locations": [location.to_dict() for location in self.locations],
        }
        if self.ignored is not None:
            data["ignored"] = self.ignored
        return data


@dataclass(frozen=True)
class Unscanned:
    """Something the scan could not read: it is an unknown, never a pass.

    Attributes:
        kind: ``missing-object``, ``corrupt-object``, ``shallow``, ``submodule``,
            ``lfs-missing``, ``truncated``.
        object_id: the object concerned, where there is one.
        detail: a sentence for the operator: what it is and what to do.
        path: where it lives in the tree, where known.
    """

    kind: str
    object_id: str | None
    detail: str
    path: str | None = None

    @property
    def makes_incomplete(self) -> bool:
        """Submodules and LFS content live elsewhere; everything else is a gap."""
        return self.kind not in {"submodule", "lfs-missing"}

    @property
    def shown_path(self) -> str | None:
        return redact_text(self.path) if self.path else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "object": self.object_id,
            "path": self.shown_path,
            "detail": self.detail,
        }


@dataclass
class ScanStats:
    """Counts and timings of one scan."""

    objects: int = 0
    blobs: int = 0
    bytes: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "objects": self.objects,
            "blobs": self.blobs,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class ScanReport:
    """The result of scanning one repository's whole object database."""

    repository: str
    findings: list[Finding] = field(default_factory=list)
    publishable: list[Finding] = field(default_factory=list)
    ignored: list[Finding] = field(default_factory=list)
    unscanned: list[Unscanned] = field(default_factory=list)
    stats: ScanStats = field(default_factory=ScanStats)
    scanned_at: str = ""

    @property
    def incomplete(self) -> bool:
        """True when part of the history could not be read: never call it clean."""
        return any(item.makes_incomplete for item in self.unscanned)

    @property
    def clean(self) -> bool:
        return not self.findings and not self.incomplete

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": "incident",
            "repository": self.repository,
            "scanned_at": self.scanned_at,
            "complete": not self.incomplete,
            "clean": self.clean,
            "findings": [finding.to_dict() for finding in self.findings],
            "publishable": [finding.to_dict() for finding in self.publishable],
            "ignored": [finding.to_dict() for finding in self.ignored],
            "not_scanned": [item.to_dict() for item in self.unscanned],
            "stats": self.stats.to_dict(),
        }
