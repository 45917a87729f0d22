"""The few git plumbing calls guard and audit make, each one process per batch.

Blobs are read through one ``git cat-file --batch`` process per call, so a commit of
a thousand files costs one process, not a thousand.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from incident.history.repository import Repository, open_repository
from incident.history.repository import run_git as history_run_git

logger = logging.getLogger(__name__)

ZERO_SHA = "0" * 40


def run_git(repo: Path, *args: str, input: bytes | None = None,
            check: bool = True) -> bytes:
    """Run git in repo and return its stdout (see incident.history.run_git)."""
    return history_run_git(repo, *args, input=input, check=check)


RepoPaths = Repository


def locate_repository(path: Path) -> Repository:
    """The repository at path: its git dir and, unless bare, its work tree.

    Raises:
        NotARepositoryError: path is not inside a git repository.
    """
    return open_repository(Path(path))


class GitObject(NamedTuple):
    """One object's type (blob, tree, commit, tag) and raw content."""

    type: str
    data: bytes


def read_objects(repo: Path, names: Iterable[str]) -> dict[str, GitObject]:
    """Read many objects with one ``git cat-file --batch``.

    Args:
        names: object ids or any revision expressions (``HEAD:path``).

    Returns:
        The objects found, keyed by the name asked for; missing ones are left out.
    """
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}
    raw = run_git(repo, "cat-file", "--batch",
                  input=("\n".join(wanted) + "\n").encode())
    objects: dict[str, GitObject] = {}
    position = 0
    for sha in wanted:
        end = raw.index(b"\n", position)
        line = raw[position:end]
        position = end + 1
        header = line.split()
        if line.endswith((b" missing", b" ambiguous")) or len(header) != 3:
            continue
        size = int(header[2])
        objects[sha] = GitObject(header[1].decode(), raw[position:position + size])
        position += size + 1  # the content is followed by one newline
    return objects


def resolve_names(repo: Path, names: Iterable[str]) -> dict[str, str]:
    """Map revision expressions to object ids with one ``--batch-check``."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}
    raw = run_git(repo, "cat-file", "--batch-check=%(objectname)",
                  input=("\n".join(wanted) + "\n").encode())
    resolved: dict[str, str] = {}
    for name, line in zip(wanted, raw.decode().splitlines(), strict=False):
        if not line.endswith(" missing") and len(line.split()) == 1:
            resolved[name] = line
    return resolved
