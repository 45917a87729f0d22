"""The `.pre-commit-hooks.yaml` entry runs the guard check on the index."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from tests.guard.cli_helpers import invoke
from tests.helpers.gitrepo import GitRepo, fake_key

MANIFEST = Path(__file__).resolve().parents[2] / ".pre-commit-hooks.yaml"


def test_manifest_entry_is_the_guard_check(work: GitRepo) -> None:
    """The hook's entry, run as pre-commit would, blocks a staged key."""
    hooks = yaml.safe_load(MANIFEST.read_text())
    hook = next(h for h in hooks if h["id"] == "incident-guard")
    work.write({"k.py": f"K = '{fake_key(seed='manifest')}'\n"})

    program, *args = shlex.split(hook["entry"])
    result = invoke([*args, str(work.path)], expected=1)

    assert program == "incident"
    assert hook["pass_filenames"] is False
    assert set(hook["stages"]) == {"pre-commit", "pre-push"}
    assert "k.py:1" in result.stdout
