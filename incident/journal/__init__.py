"""The incident journal: an append-only JSON Lines record, one fsynced event per line.

Every step records what it is about to do before it does it, and what happened after,
so a crashed or interrupted run can resume without repeating an irreversible step.
No event may hold a secret value: append() refuses anything shaped like a key.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from incident.detect.rules import KEY_PATTERN
from incident.errors import UsageError

JOURNAL_NAME = "journal.jsonl"
DEFAULT_ROOT = ".incident"


def utc_now() -> str:
    """Current UTC time, ISO 8601 with microseconds and a Z suffix."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def new_incident_id() -> str:
    """A sortable, readable id: inc-20261203T195700Z-3f9a."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"inc-{stamp}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class JournalEvent:
    """One line of the journal."""

    time: str
    step: str
    event: str
    data: dict[str, Any] = field(default_factory=dict)
    actor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "step": self.step,
            "event": self.event,
            "actor": self.actor,
            **({"data": self.data} if self.data else {}),
        }


class SecretInJournalError(ValueError):
    """Raised instead of writing an event that holds something shaped like a key."""


class Journal:
    """An incident's directory and its append-only event log."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / JOURNAL_NAME
        self.incident_id = directory.name
        # Who runs the tool (git identity); stamped on events that name no actor.
        self.actor: str | None = None

    @classmethod
    def create(
        cls, root: Path | None = None, incident_id: str | None = None
    ) -> Journal:
        """Create a new incident directory (0700) and its journal (0600)."""
        root = (root or Path.cwd() / DEFAULT_ROOT).resolve()
        incident_id = incident_id or new_incident_id()
        directory = root / incident_id
        directory.mkdir(parents=True, exist_ok=False, mode=0o700)
        os.chmod(root, 0o700)
        fd = os.open(
            directory / JOURNAL_NAME, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600
        )
        os.close(fd)
        return cls(directory)

    @classmethod
    def open(cls, root: Path | None, incident_id: str) -> Journal:
        """Open an existing incident by id (or by the path of its directory)."""
        candidate = Path(incident_id)
        directory = (
            candidate
            if (candidate / JOURNAL_NAME).is_file()
            else (root or Path.cwd() / DEFAULT_ROOT) / incident_id
        )
        if not (directory / JOURNAL_NAME).is_file():
            raise UsageError(
                f"no incident {incident_id!r} under {directory.parent}",
                "List incidents with: ls .incident/  (or pass --incident-dir)",
            )
        return cls(directory.resolve())

    def append(
        self, step: str, event: str, actor: str | None = None, **data: Any
    ) -> JournalEvent:
        """Write one event and fsync it before returning.

        Raises:
            SecretInJournalError: the event would hold a key-shaped value.
        """
        entry = JournalEvent(
            time=utc_now(), step=step, event=event, data=data,
            actor=actor or self.actor,
        )
        line = json.dumps(entry.to_dict(), sort_keys=True, default=str)
        if KEY_PATTERN.search(line.encode()):
            raise SecretInJournalError(
                f"refusing to journal a secret value in {step}/{event}"
            )
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return entry

    def events(self) -> list[JournalEvent]:
        """Every event in order; a torn last line (crash mid-write) is skipped."""
        return list(self._read())

    def _read(self) -> Iterator[JournalEvent]:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as handle:
            for raw in handle:
                try:
                    item = json.loads(raw)
                except json.JSONDecodeError:
                    continue
                yield JournalEvent(
                    time=item["time"],
                    step=item["step"],
                    event=item["event"],
                    data=item.get("data", {}),
                    actor=item.get("actor"),
                )

    def find(
        self, step: str | None = None, event: str | None = None, **match: Any
    ) -> list[JournalEvent]:
        """Events with this step and event whose data holds every key=value given."""
        return [
            e
            for e in self.events()
            if (step is None or e.step == step)
            and (event is None or e.event == event)
            and all(e.data.get(k) == v for k, v in match.items())
        ]

    def command(self, *words: str) -> str:
        """An `incident` command line about this incident that works from any
        directory: it names the incident and the folder that holds it."""
        return " ".join(["incident", *words, "--incident", self.incident_id,
                         "--incident-dir", shlex.quote(str(self.directory.parent))])

    def secret_file(self, name: str) -> Path:
        """A path in the incident directory for a file that must hold a secret."""
        return self.directory / name


def operator_identity(repo: Path | None = None) -> str:
    """The git identity of whoever runs the tool, ``Name <email>``, for the record."""

    def config(key: str) -> str:
        args = ["git", *(["-C", str(repo)] if repo else []), "config", key]
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        return result.stdout.strip()

    name, email = config("user.name"), config("user.email")
    if not name and not email:
        return os.environ.get("USER", "unknown")
    return f"{name} <{email}>"


def keep_out_of_git(directory: Path) -> None:
    """Make sure no git work tree that holds directory offers to commit it.

    Give the folder to keep out as a whole (REPO/.incident, not one incident).

    The incident folder holds backups and new keys. Whatever work tree it sits in
    (the repository's own, a linked worktree's, or another repository around a
    bare one) gets it in the shared info/exclude, so `git add -A` never takes it.
    """
    probe = directory
    for _ in range(8):  # nested repositories, bounded
        top = _git_path(probe, "--show-toplevel")
        if top is not None:
            _add_exclude(_git_path(probe, "--git-common-dir"), top, directory)
            return
        # Inside a bare repository (or a .git folder): look around it.
        git_dir = _git_path(probe, "--absolute-git-dir")
        if git_dir is None or git_dir.parent == git_dir:
            return
        probe = git_dir.parent


def _git_path(where: Path, flag: str) -> Path | None:
    result = subprocess.run(
        ["git", "-C", str(where), "rev-parse", "--path-format=absolute", flag],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0 or not result.stdout.strip():
        return None
    return Path(result.stdout.strip())


def _add_exclude(common_dir: Path | None, top: Path, directory: Path) -> None:
    if common_dir is None:
        return
    try:
        relative = directory.resolve().relative_to(top.resolve())
    except ValueError:
        return
    pattern = "/" + relative.as_posix() + "/"
    exclude = common_dir / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    existing = exclude.read_text() if exclude.exists() else ""
    if pattern not in existing.splitlines():
        with open(exclude, "a", encoding="utf-8") as handle:
            if existing and not existing.endswith("\n"):
                handle.write("\n")
            handle.write(pattern + "\n")
