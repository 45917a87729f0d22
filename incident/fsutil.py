"""Atomic file writes; files that hold a secret are created 0600 from the start."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> Path:
    """Write data to path atomically: a temp file in the same folder, fsync, rename.

    The file has its final mode before the first byte is written, so a secret is
    never readable by others, not even for an instant.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
        raise
    _fsync_directory(path.parent)
    return path


def write_secret_file(path: Path, data: bytes | str) -> Path:
    """Write a file that holds a secret: mode 0600, atomic, durable."""
    raw = data.encode() if isinstance(data, str) else data
    return write_atomic(path, raw, mode=0o600)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
