"""The few git plumbing calls guard and audit make, each one process per batch.

Blobs are read through one ``git cat-file --batch`` process per call, so a commit of
a thousand files costs one process, not a thousand.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from incident.errors import GitError, NotARepositoryError
from incident.redact import redact_text

logger = logging.getLogger(__name__)

ZERO_SHA = "0" * 40


def run_git(repo: Path, *args: str, input: bytes | None = None,
            check: bool = True) -> bytes:
    """Run git in repo and return its stdout.

    Raises:
        GitError: git exited non-zero (only when check is true).
    """
    command = ["git", "-C", str(repo), *args]
    logger.debug("git %s", " ".join(args))
    result = subprocess.run(command, input=input, capture_output=True, check=False)
    if check and result.returncode != 0:
        # git echoes its arguments and paths; mask anything key-shaped in them.
        detail = redact_text(result.stderr.decode("utf-8", "replace").strip())
        raise GitError(
            f"git {args[0]} failed in {repo}: {detail}",
            "Check that the repository is readable, then run the command again.",
        )
    return result.stdout


@dataclass(frozen=True)
class RepoPaths:
    """Where a repository keeps its objects and, unless bare, its files."""

    git_dir: Path
    work_tree: Path | None

    @property
    def is_bare(self) -> bool:
        return self.work_tree is None


def locate_repository(path: Path) -> RepoPaths:
    """Return the git dir and work tree of the repository at path.

    Raises:
        NotARepositoryError: path is not inside a git repository.
    """
    if not Path(path).is_dir():
        raise NotARepositoryError(
            f"{path} is not a directory.", "Give the path of a git repository."
        )
    result = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--absolute-git-dir",
         "--is-bare-repository", "--show-toplevel"],
        capture_output=True, check=False, text=True,
    )
    lines = result.stdout.splitlines()
    if result.returncode != 0 and len(lines) < 2:
        raise NotARepositoryError(
            f"{path} is not a git repository.",
            "Run the command from inside the repository, or pass its path.",
        )
    git_dir = Path(lines[0])
    if len(lines) >= 3 and lines[2]:
        return RepoPaths(git_dir=git_dir, work_tree=Path(lines[2]))
    # Pointed at the .git folder of an ordinary clone: its work tree is the parent.
    if lines[1] == "false" and git_dir.name == ".git":
        return RepoPaths(git_dir=git_dir, work_tree=git_dir.parent)
    return RepoPaths(git_dir=git_dir, work_tree=None)


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
