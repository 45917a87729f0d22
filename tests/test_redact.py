"""Credentials in remote URLs are as secret as keys: never shown, never journaled."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from incident.redact import redact_text
from incident.rewrite import PurgeOptions, purge_repository
from tests.cli.helpers import invoke
from tests.helpers.gitrepo import GitRepo, fake_key

TOKEN = "ghp_" + "Q7fz2LkP9xWmR4tYb8NcVd3HsJ6aE1uG"


@pytest.mark.parametrize(("url", "shown"), [
    (f"https://deploy:{TOKEN}@github.com/acme/pay.git",
     "https://deploy:***@github.com/acme/pay.git"),
    (f"https://{TOKEN}@github.com/acme/pay.git", "https://***@github.com/acme/pay.git"),
    ("ssh://git@github.com/acme/pay.git", "ssh://git@github.com/acme/pay.git"),
    ("git@github.com:acme/pay.git", "git@github.com:acme/pay.git"),
    ("http://127.0.0.1:12111/v1/account", "http://127.0.0.1:12111/v1/account"),
])
def test_url_credentials_are_masked_and_nothing_else(url: str, shown: str) -> None:
    assert redact_text(f"pushing to {url} now") == f"pushing to {shown} now"


def test_purge_keeps_a_remote_token_out_of_commands_and_support_request(
    tmp_path: Path,
) -> None:
    key = fake_key(seed="token-remote")
    repo = GitRepo.init(tmp_path / "repo")
    repo.commit({"a.env": f"K={key}\n"}, message="leak")
    repo.git("remote", "add", "origin",
             f"https://deploy:{TOKEN}@git.invalid/acme/pay.git")

    result = purge_repository(repo.path, PurgeOptions(in_place=True, secrets=(key,)))

    assert result.push_commands
    for text in [*result.push_commands, result.support_request, str(result.remote)]:
        assert TOKEN not in text
    # The printed command still works: it reads the URL from the config.
    assert "remote get-url origin" in result.push_commands[0]
    check = subprocess.run(["sh", "-c", f"echo {result.push_commands[0]}"],
                           cwd=repo.path, capture_output=True, text=True)
    assert TOKEN in check.stdout  # expanded by the shell, never printed by us


def test_respond_refuses_a_remote_url_with_credentials(tmp_path: Path) -> None:
    repo = GitRepo.init(tmp_path / "repo")
    repo.commit({"a.txt": "a\n"}, message="a")

    result = invoke("respond", str(repo.path), "--remote",
                    f"https://{TOKEN}@git.invalid/x.git", exit_code=2)

    assert TOKEN not in result.stderr and "--remote incident-push" in " ".join(
        result.stderr.split())
