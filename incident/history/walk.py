"""The history walk that runs beside the object stream, on the other core.

It finds what the object stream cannot see by itself: objects that history refers to
but the store lacks (a shallow graft, a partial or size-limited clone, a deleted
file), and submodules, whose gitlink entries name commits of another repository.
Both walks run in C inside git; Python only filters their output.
"""

from __future__ import annotations

import itertools
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from incident.history.placement import decode_path
from incident.history.repository import Repository, git_env

CHUNK = 1 << 20


@dataclass
class Submodule:
    """A path that held a gitlink somewhere in history."""

    path: str
    commits: set[str] = field(default_factory=set)


def _chunks(process: subprocess.Popen[bytes], separator: bytes) -> Iterator[bytes]:
    """Yield blocks of whole records from a process's stdout."""
    assert process.stdout is not None
    tail = b""
    while chunk := process.stdout.read(CHUNK):
        data = tail + chunk
        cut = data.rfind(separator) + 1
        yield data[:cut]
        tail = data[cut:]
    if tail:
        yield tail


class HistoryWalk(threading.Thread):
    """Collect missing objects and submodule gitlinks across all refs and reflogs."""

    def __init__(self, repo: Repository) -> None:
        super().__init__(daemon=True)
        self.repo = repo
        self.missing: list[str] = []
        self.submodules: dict[str, Submodule] = {}
        self.failures: list[str] = []

    def _run(self, args: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["git", "-C", str(self.repo.path), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=git_env(),
            bufsize=CHUNK,
        )

    def _finish(self, process: subprocess.Popen[bytes], what: str) -> None:
        assert process.stderr is not None
        stderr = process.stderr.read().decode("utf-8", "replace").strip()
        if process.wait() != 0:
            reason = stderr.splitlines()[-1] if stderr else f"git {what} failed"
            self.failures.append(reason)

    def _find_missing(self) -> None:
        process = self._run(
            [
                "rev-list",
                "--objects",
                "--all",
                "--reflog",
                "--indexed-objects",
                "--missing=print",
                "--no-object-names",
            ]
        )
        for block in _chunks(process, b"\n"):
            if b"?" in block:
                self.missing.extend(
                    line[1:].decode()
                    for line in block.split(b"\n")
                    if line.startswith(b"?")
                )
        self._finish(process, "rev-list")

    def _find_gitlinks(self) -> None:
        # --raw lists every changed entry with its new mode; 160000 is a gitlink.
        process = self._run(
            [
                "log",
                "--all",
                "--reflog",
                "-m",
                "--raw",
                "--no-renames",
                "-z",
                "--no-abbrev",
                "--format=",
                "--no-textconv",
                "--no-ext-diff",
            ]
        )
        for block in _chunks(process, b"\0"):
            if b" 160000 " not in block:
                continue
            items = block.split(b"\0")
            for meta, path in itertools.pairwise(items):
                parts = meta.lstrip(b"\n").split()
                if len(parts) == 5 and parts[1] == b"160000" and parts[0][:1] == b":":
                    name = decode_path(path)
                    entry = self.submodules.setdefault(name, Submodule(name))
                    entry.commits.add(parts[3].decode())
        self._finish(process, "log")

    def run(self) -> None:
        self._find_missing()
        if not self.failures:
            self._find_gitlinks()
