"""One incident command at a time per repository; a dead holder frees it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from incident.errors import RefusedError
from incident.lock import repository_lock
from incident.rewrite import PurgeOptions, purge_repository
from tests.cli.helpers import invoke
from tests.helpers.gitrepo import GitRepo, fake_key

HOLDER = """
import sys, time
from pathlib import Path
from incident.lock import repository_lock
with repository_lock(Path(sys.argv[1]), "incident respond, incident inc-other"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_command_is_refused_until_the_first_one_dies(tmp_path: Path) -> None:
    key = fake_key(seed="locked")
    repo = GitRepo.init(tmp_path / "repo")
    repo.commit({"a.env": f"K={key}\n"}, message="leak")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(repo.path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(RefusedError, match="another incident command") as caught:
            purge_repository(repo.path, PurgeOptions(in_place=True, secrets=(key,)))
        assert "inc-other" in caught.value.message
        assert key in repo.git("log", "-p")  # nothing was rewritten
    finally:
        holder.kill()  # a crash: the kernel drops the lock with the process
        holder.wait()

    result = purge_repository(repo.path, PurgeOptions(in_place=True, secrets=(key,)))

    assert result.verification is not None and result.verification.clean


def test_the_lock_is_reentrant_within_one_process(tmp_path: Path) -> None:
    """respond holds it and calls roll and purge, which take it again."""
    repo = GitRepo.init(tmp_path / "repo")
    repo.commit({"a.txt": "a\n"}, message="a")
    with repository_lock(repo.path, "outer"), repository_lock(repo.path, "inner"):
        pass
    with repository_lock(repo.path, "again"):  # released after the outer block
        pass


def test_a_refused_respond_leaves_no_incident_behind(tmp_path: Path) -> None:
    repo = GitRepo.init(tmp_path / "repo")
    repo.commit({"a.txt": "a\n"}, message="a")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(repo.path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        result = invoke("respond", str(repo.path), "--yes", exit_code=3)
    finally:
        holder.kill()
        holder.wait()

    assert "another incident command" in result.stderr
    assert not (repo.path / ".incident").exists() or not any(
        (repo.path / ".incident").iterdir())
