"""Open a repository of any shape and run git in it.

Normal clones, bare and ``--mirror`` clones and linked worktrees all resolve to one
object database; every git call goes through run_git so failures read the same.
"""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from incident.errors import GitError, NotARepositoryError
from incident.redact import redact_text

logger = logging.getLogger(__name__)

# NOTE: git would otherwise fetch missing objects of a partial clone from its promisor
# remote in the middle of a scan (newer git honours this variable; older ignores it).
GIT_ENV = {"GIT_NO_LAZY_FETCH": "1", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}


@dataclass(frozen=True)
class Repository:
    """Where a repository's parts live.

    Attributes:
        path: the path the user gave, resolved.
        git_dir: this worktree's git directory (holds HEAD and its reflog).
        common_dir: the shared git directory (objects, refs, LFS store).
        work_tree: the checkout, or None for a bare repository.
        shallow: True for a shallow clone: history before the graft is absent.
    """

    path: Path
    git_dir: Path
    common_dir: Path
    work_tree: Path | None
    shallow: bool

    @property
    def bare(self) -> bool:
        return self.work_tree is None

    @property
    def is_bare(self) -> bool:
        return self.work_tree is None


def git_env() -> dict[str, str]:
    return {**os.environ, **GIT_ENV}


def run_git(
    repo: Path | Repository, *args: str, input: bytes | None = None, check: bool = True
) -> bytes:
    """Run git in repo and return stdout.

    Raises:
        GitError: git exited non-zero (with its last stderr line).
    """
    where = repo.path if isinstance(repo, Repository) else repo
    command = ["git", "-C", str(where), *args]
    logger.debug("git %s", " ".join(args))
    result = subprocess.run(
        command, input=input, capture_output=True, env=git_env(), check=False
    )
    if check and result.returncode != 0:
        # git echoes arguments and paths: mask anything key-shaped in them.
        lines = redact_text(result.stderr.decode("utf-8", "replace")).strip()
        reason = lines.splitlines()[-1] if lines else "no output"
        raise GitError(
            f"git {args[0]} failed in {where}: {reason}",
            f"Check the repository with: git -C {where} fsck",
        )
    return result.stdout


def open_repository(path: Path) -> Repository:
    """Resolve path to a Repository, or explain why it is not one.

    Raises:
        NotARepositoryError: path does not exist or holds no git repository.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise NotARepositoryError(
            f"{path} does not exist", "Give the path of a git repository."
        )
    result = subprocess.run(
        [
            "git",
            "-C",
            str(path),
            "rev-parse",
            "--path-format=absolute",
            "--git-dir",
            "--git-common-dir",
            "--is-bare-repository",
            "--is-shallow-repository",
            "--show-toplevel",
        ],
        capture_output=True,
        env=git_env(),
        check=False,
    )
    lines = result.stdout.decode("utf-8", "surrogateescape").splitlines()
    if result.returncode != 0 and len(lines) < 4:
        reason = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise NotARepositoryError(
            f"{path} is not a git repository" + (f" ({reason[-1]})" if reason else ""),
            "Run the command inside a clone, or give its path: incident scan PATH",
        )
    git_dir, common_dir, bare, shallow = lines[:4]
    work_tree = Path(lines[4]) if bare != "true" and len(lines) > 4 else None
    if work_tree is None and bare != "true" and Path(git_dir).name == ".git":
        # Pointed at the .git folder of an ordinary clone: its work tree is the parent.
        work_tree = Path(git_dir).parent
    return Repository(
        path=path.resolve(),
        git_dir=Path(git_dir),
        common_dir=Path(common_dir),
        work_tree=work_tree,
        shallow=shallow == "true",
    )
