"""Fixtures for the guard tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.gitrepo import GitRepo


@pytest.fixture
def work(tmp_path: Path) -> GitRepo:
    """A repository with one clean commit on main."""
    repo = GitRepo.init(tmp_path / "work")
    repo.commit({"README.md": "hello\n"}, "initial")
    return repo
