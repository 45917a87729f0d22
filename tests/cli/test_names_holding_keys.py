"""A key in a branch, tag or file name is a key: no output shows it whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import invoke
from tests.helpers.gitrepo import GitRepo, fake_key


@pytest.fixture
def named(tmp_path: Path) -> tuple[GitRepo, str]:
    key = fake_key(prefix="sk_" + "test_", seed="in-a-name", length=40)
    repo = GitRepo.init(tmp_path / "repo")
    repo.commit({"config.env": f"STRIPE={key}\n"}, message="add config")
    repo.commit({f"notes/{key}.txt": "see config\n"}, message="notes")
    repo.git("branch", f"leak-{key}")
    repo.git("branch", f"key_{key}")  # glued to a word: still a key to hide
    repo.git("tag", f"v-{key}")
    repo.git("tag", f"abc{key}")
    return repo, key


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "markdown"])
def test_scan_never_prints_a_key_held_in_a_name(named: tuple[GitRepo, str],
                                                fmt: str) -> None:
    repo, key = named

    result = invoke("scan", str(repo.path), "--format", fmt, exit_code=1)

    assert key not in result.stdout + result.stderr
    assert key[-4:] in result.stdout  # the redacted name is still there


def test_audit_never_prints_a_key_held_in_a_name(named: tuple[GitRepo, str]) -> None:
    repo, key = named
    for fmt in ("text", "json", "markdown"):
        result = invoke("audit", str(repo.path), "--format", fmt, exit_code=1)
        assert key not in result.stdout + result.stderr
