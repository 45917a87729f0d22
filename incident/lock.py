"""One incident command at a time per repository.

Two responses running together on one repository would rotate a key twice
(two different new keys, one of them lost) and rewrite history under each
other. Each command that changes things holds an exclusive lock on a file in
the repository's common git directory for as long as it runs. The lock is an
flock: the kernel drops it when the process dies, so a crash never leaves the
repository locked.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from incident.errors import NotARepositoryError, RefusedError

LOCK_NAME = "incident.lock"

# Locks this process holds, by file, with their depth: respond takes the lock,
# then calls roll and purge, which take it again.
_held: dict[Path, tuple[int, int]] = {}


def _lock_file(repo: Path) -> Path | None:
    from incident.history.repository import open_repository

    try:
        return open_repository(repo).common_dir / LOCK_NAME
    except NotARepositoryError:
        return None


@contextmanager
def repository_lock(repo: Path, what: str) -> Iterator[None]:
    """Hold the repository's incident lock while the block runs.

    Raises:
        RefusedError: another incident command holds it; says which and since when.
    """
    path = _lock_file(repo)
    if path is None:  # not a repository: the command reports that itself
        yield
        return
    if path in _held:
        fd, depth = _held[path]
        _held[path] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _held[path]
            _held[path] = (fd, depth - 1)
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_holder(fd)
        os.close(fd)
        raise RefusedError(
            f"another incident command is working on {repo}: {holder}",
            "Wait for it to finish (or stop it), then run this command again; "
            "running both would rotate keys or rewrite history twice.",
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "command": what}).encode())
    _held[path] = (fd, 1)
    try:
        yield
    finally:
        del _held[path]
        os.ftruncate(fd, 0)
        os.close(fd)  # closing releases the flock


def _read_holder(fd: int) -> str:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return "a process that did not say what it is"
    return f"{data.get('command', 'incident')} (pid {data.get('pid', '?')})"
