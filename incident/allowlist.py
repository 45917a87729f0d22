"""The committed allowlist of known test fixtures, honoured by scan, audit and guard.

``.incident-allowlist.yaml`` sits at the repository root and is committed, so every
clone, CI run and hook sees the same exceptions. It names keys by fingerprint only:
the file itself must never hold a secret. Format::

    # Keys that look like Stripe secrets but are known test fixtures.
    allow:
      - fingerprint: 9c1e...64 hex digits...
        reason: fake key in tests/fixtures/charge.json
        added_by: Dana Dev <dana@example.com>
        added_at: "2026-12-03T20:00:00Z"

A plain list of entries (without ``allow:``) is accepted too.
"""

from __future__ import annotations

import logging
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from incident.detect.rules import KEY_PATTERN
from incident.errors import UsageError
from incident.fsutil import write_atomic
from incident.redact import redact_text

logger = logging.getLogger(__name__)

ALLOWLIST_FILE = ".incident-allowlist.yaml"
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_FIELDS = {"fingerprint", "reason", "added_by", "added_at"}
_HEADER = (
    "# Known test fixtures that look like Stripe secrets, by SHA-256 fingerprint.\n"
    "# Honoured by `incident scan`, `incident audit` and `incident guard`.\n"
    "# Add one with: incident guard allow FINGERPRINT --reason TEXT\n"
)


@dataclass(frozen=True)
class AllowlistEntry:
    """One allowed fingerprint and why it is allowed."""

    fingerprint: str
    reason: str
    added_by: str | None = None
    added_at: str | None = None
    line: int = 0

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"fingerprint": self.fingerprint, "reason": self.reason}
        if self.added_by:
            data["added_by"] = self.added_by
        if self.added_at:
            data["added_at"] = self.added_at
        return data


@dataclass(frozen=True)
class Allowlist:
    """The allowed fingerprints of one repository (empty when there is no file).

    Attributes:
        entries: every entry, in file order.
        source: where the entries were read from (a path, or ``REV:path``).
    """

    entries: tuple[AllowlistEntry, ...] = ()
    source: str | None = None
    _by_fingerprint: dict[str, AllowlistEntry] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for entry in self.entries:
            self._by_fingerprint.setdefault(entry.fingerprint, entry)

    def reason_for(self, fingerprint: str) -> str | None:
        """Return why fingerprint is allowed, or None when it is not."""
        entry = self._by_fingerprint.get(fingerprint.lower())
        return entry.reason if entry else None

    def __contains__(self, fingerprint: object) -> bool:
        return isinstance(fingerprint, str) and self.reason_for(fingerprint) is not None

    def __len__(self) -> int:
        return len(self.entries)


def load_allowlist(work_tree_or_git_dir: Path, *, rev: str | None = None) -> Allowlist:
    """Read the repository's allowlist: from the work tree, or from rev / HEAD if bare.

    Args:
        work_tree_or_git_dir: a work tree (any folder inside it) or a bare git dir.
        rev: read the committed file at this revision instead of the work tree.

    Raises:
        UsageError: the file is not valid YAML or an entry is malformed; the
            message names the line.
    """
    from incident.guard.gitio import locate_repository

    paths = locate_repository(Path(work_tree_or_git_dir))
    if rev is None and paths.work_tree is not None:
        path = paths.work_tree / ALLOWLIST_FILE
        if not path.is_file():
            return Allowlist(source=None)
        return parse_allowlist(path.read_bytes(), str(path))

    revision = rev or "HEAD"
    result = subprocess.run(
        ["git", "--git-dir", str(paths.git_dir), "show",
         f"{revision}:{ALLOWLIST_FILE}"],
        capture_output=True, check=False,
    )
    if result.returncode != 0:
        # No commit yet, or no allowlist committed: nothing is allowed.
        logger.debug("no %s at %s", ALLOWLIST_FILE, revision)
        return Allowlist(source=None)
    return parse_allowlist(result.stdout, f"{revision}:{ALLOWLIST_FILE}")


def parse_allowlist(data: bytes, source: str) -> Allowlist:
    """Parse allowlist YAML; every mistake is reported with its line.

    Raises:
        UsageError: invalid YAML, a missing or malformed field, or a secret in it.
    """
    hint = f"Fix {source}; each entry needs a 64-hex fingerprint and a reason."
    line = _first_key_line(data)
    if line:
        raise UsageError(
            f"{source}, line {line}: holds something shaped like a Stripe key; "
            "the allowlist names keys by fingerprint only.",
            "Replace the key with its fingerprint (shown by incident scan), "
            "and treat the key as leaked if this file was committed.",
        )
    try:
        root = yaml.compose(data.decode("utf-8", "replace"), Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        raise UsageError(
            f"{source}, line {line}: not valid YAML ({exc.problem}).", hint
        ) from exc
    if root is None:
        return Allowlist(source=source)

    items = _entry_nodes(root, source, hint)
    entries = tuple(_parse_entry(node, source, hint) for node in items)
    return Allowlist(entries=entries, source=source)


def _first_key_line(data: bytes) -> int:
    """Return the first line holding anything key-shaped, or 0 when none does."""
    for number, line in enumerate(data.split(b"\n"), start=1):
        text = line.decode("utf-8", "replace")
        if KEY_PATTERN.search(line) or redact_text(text) != text:
            return number
    return 0


def _entry_nodes(root: yaml.Node, source: str, hint: str) -> list[yaml.Node]:
    """Return the entry nodes under ``allow:`` (or a top-level list)."""
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "allow":
                root = value
                break
        else:
            raise UsageError(
                f"{source}, line {root.start_mark.line + 1}: expected an "
                "`allow:` list of entries.", hint
            )
        if isinstance(root, yaml.ScalarNode) and root.value in ("", "null", "~"):
            return []
    if not isinstance(root, yaml.SequenceNode):
        raise UsageError(
            f"{source}, line {root.start_mark.line + 1}: expected a list of "
            "entries.", hint
        )
    return list(root.value)


def _parse_entry(node: yaml.Node, source: str, hint: str) -> AllowlistEntry:
    line = node.start_mark.line + 1
    where = f"{source}, line {line}"
    if not isinstance(node, yaml.MappingNode):
        raise UsageError(f"{where}: an entry must be a mapping with fingerprint "
                         "and reason.", hint)
    values: dict[str, str] = {}
    for key, value in node.value:
        name = str(key.value)
        if name not in _FIELDS:
            raise UsageError(
                f"{source}, line {key.start_mark.line + 1}: unknown field "
                f"{name!r} (allowed: {', '.join(sorted(_FIELDS))}).", hint
            )
        if not isinstance(value, yaml.ScalarNode):
            raise UsageError(
                f"{source}, line {value.start_mark.line + 1}: {name} must be text.",
                hint,
            )
        values[name] = str(value.value).strip()

    fingerprint = values.get("fingerprint", "").lower()
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise UsageError(
            f"{where}: fingerprint must be the full SHA-256 (64 hex digits), "
            f"got {fingerprint[:70]!r}.",
            "Copy the fingerprint from `incident scan --format json` or from the "
            "guard's message.",
        )
    if not values.get("reason"):
        raise UsageError(f"{where}: entry {fingerprint[:12]} has no reason.", hint)
    return AllowlistEntry(
        fingerprint=fingerprint,
        reason=values["reason"],
        added_by=values.get("added_by") or None,
        added_at=values.get("added_at") or None,
        line=line,
    )


def add_allowlist_entry(work_tree: Path, entry: AllowlistEntry) -> Path:
    """Add entry to the work tree's allowlist file, keeping its comments.

    Returns:
        The path of the allowlist file (to be committed by the operator).

    Raises:
        UsageError: the existing file is malformed, or the new entry is invalid.
    """
    if not _FINGERPRINT.fullmatch(entry.fingerprint):
        shaped = redact_text(entry.fingerprint) != entry.fingerprint
        raise UsageError(
            "That is a key, not a fingerprint; the allowlist must never hold a key."
            if shaped else
            f"{entry.fingerprint[:70]!r} is not a fingerprint (64 hex digits).",
            "Copy the fingerprint printed by `incident guard check` or "
            "`incident scan`.",
        )
    path = Path(work_tree) / ALLOWLIST_FILE
    existing = path.read_bytes() if path.exists() else b""
    current = parse_allowlist(existing, str(path)) if existing else Allowlist()
    if entry.fingerprint in current:
        return path

    block = yaml.safe_dump([entry.to_dict()], sort_keys=False, allow_unicode=True,
                           width=1000)
    indented = "".join(f"  {line}\n" for line in block.splitlines())
    if not existing.strip():
        text = _HEADER + "allow:\n" + indented
    else:
        text = existing.decode("utf-8")
        if not text.endswith("\n"):
            text += "\n"
        text += indented
    new = text.encode("utf-8")
    try:
        parsed = parse_allowlist(new, str(path))
        appended = [e.fingerprint for e in parsed.entries] == [
            *(e.fingerprint for e in current.entries), entry.fingerprint
        ]
    except UsageError:
        appended = False
    if not appended:
        # The file's layout does not end in the `allow:` list, so appending text
        # would not add an entry; rewrite it whole (comments are lost).
        logger.warning("rewrote %s in canonical form; its comments were dropped", path)
        entries = [e.to_dict() for e in (*current.entries, entry)]
        new = (_HEADER + yaml.safe_dump({"allow": entries}, sort_keys=False,
                                        allow_unicode=True, width=1000)).encode()
        parse_allowlist(new, str(path))
    write_atomic(path, new)
    return path
