"""Git LFS pointers: read through to the local LFS store, or report content absent."""

from __future__ import annotations

import re
from pathlib import Path

_POINTER = re.compile(
    rb"^version https://git-lfs\.github\.com/spec/v1\n(?:.*\n)*?"
    rb"oid sha256:([0-9a-f]{64})\n",
    re.MULTILINE,
)
MAX_POINTER_SIZE = 1024


def is_pointer(data: bytes) -> bool:
    """True for an LFS pointer file (small, fixed first line)."""
    return (
        len(data) < MAX_POINTER_SIZE
        and data.startswith(b"version https://git-lfs.github.com/spec/v1")
        and _POINTER.match(data) is not None
    )


def pointer_oid(data: bytes) -> str:
    """The sha256 object id a pointer names."""
    match = _POINTER.match(data)
    return match.group(1).decode() if match else ""


class LfsStore:
    """The repository's local LFS object store (``<common dir>/lfs/objects``)."""

    def __init__(self, common_dir: Path) -> None:
        self.root = common_dir / "lfs" / "objects"

    def read(self, pointer: bytes) -> bytes | None:
        """The content a pointer names, or None when it is not stored locally."""
        oid = pointer_oid(pointer)
        path = self.root / oid[:2] / oid[2:4] / oid
        try:
            return path.read_bytes()
        except OSError:
            return None
