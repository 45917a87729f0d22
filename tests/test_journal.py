"""The incident journal's folder never ends up in a commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

from incident.journal import keep_out_of_git


def _git(where: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(where), *args], check=True,
                          capture_output=True, text=True).stdout


def _untracked(where: Path) -> str:
    return _git(where, "status", "--porcelain", "--untracked-files=all")


def test_kept_out_of_a_linked_worktree_and_its_main_tree(tmp_path: Path) -> None:
    main = tmp_path / "main"
    _git(tmp_path, "init", "-q", str(main))
    _git(main, "-c", "user.name=A", "-c", "user.email=a@x", "commit", "-q",
         "--allow-empty", "-m", "a")
    linked = tmp_path / "linked"
    _git(main, "worktree", "add", "-q", str(linked))
    folder = linked / ".incident"
    (folder / "inc-1").mkdir(parents=True)
    (folder / "inc-1" / "new-key.txt").write_text("secret\n")

    keep_out_of_git(folder)

    assert _untracked(linked) == ""


def test_kept_out_of_a_repository_around_a_bare_one(tmp_path: Path) -> None:
    """A bare repository inside another repository's work tree: its incident
    folder is hidden from the outer repository too."""
    outer = tmp_path / "outer"
    _git(tmp_path, "init", "-q", str(outer))
    bare = outer / "payments.git"
    _git(outer, "init", "-q", "--bare", str(bare))
    _git(outer, "add", "-A")  # the bare repository's own files
    _git(outer, "-c", "user.name=A", "-c", "user.email=a@x", "commit", "-q", "-m",
         "vendored bare repository")
    folder = bare / ".incident"
    (folder / "inc-1").mkdir(parents=True)
    (folder / "inc-1" / "new-key.txt").write_text("secret\n")

    keep_out_of_git(folder)

    assert _untracked(outer) == ""


def test_a_folder_outside_any_work_tree_is_left_alone(tmp_path: Path) -> None:
    folder = tmp_path / "incidents"
    folder.mkdir()

    keep_out_of_git(folder)  # no repository around it: nothing to do, no error
