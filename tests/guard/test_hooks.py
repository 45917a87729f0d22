"""`incident guard install / uninstall`: real hooks run by real git commands."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from incident.errors import RefusedError
from incident.guard import HookAction, install_hooks, uninstall_hooks
from incident.guard.hooks import is_guard_hook
from tests.guard.cli_helpers import invoke
from tests.helpers.gitrepo import GitRepo, fake_key


def git(repo: GitRepo, *args: str) -> subprocess.CompletedProcess[str]:
    """Run git as a user would: hooks run, failures are returned, not raised."""
    return subprocess.run(["git", "-C", str(repo.path), *args], capture_output=True,
                          text=True, check=False, env=repo.env())


def write_hook(path: Path, body: str) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path.read_bytes()


def test_install_blocks_a_commit_with_a_key_and_lets_clean_ones_through(
        work: GitRepo) -> None:
    """After install, `git commit` with a key fails and names the file; clean passes."""
    key = fake_key(seed="hook")
    invoke(["guard", "install", str(work.path)], expected=0)
    work.write({"pay.py": f"stripe.api_key = '{key}'\n"})

    blocked = git(work, "commit", "-q", "-m", "leak")
    work.git("rm", "-q", "--cached", "pay.py")
    work.write({"pay.py": "import os\n"})
    clean = git(work, "commit", "-q", "-m", "clean")

    assert blocked.returncode == 1
    assert "pay.py:1" in blocked.stdout + blocked.stderr
    assert key not in blocked.stdout + blocked.stderr
    assert clean.returncode == 0, clean.stderr
    for name in ("pre-commit", "pre-push"):
        hook = work.path / ".git" / "hooks" / name
        assert is_guard_hook(hook) and os.access(hook, os.X_OK)


def test_install_chains_existing_hook_and_uninstall_restores_it(work: GitRepo) -> None:
    """An existing hook still runs, its failure still blocks, and comes back intact."""
    hooks = work.path / ".git" / "hooks"
    original = write_hook(hooks / "pre-commit",
                          'echo ran >> "$(git rev-parse --git-dir)/chained.log"\n'
                          'exit "${FAIL:-0}"\n')
    (hooks / "pre-commit").chmod(0o750)

    changes = install_hooks(work.path)
    work.write({"a.txt": "a\n"})
    passed = git(work, "commit", "-q", "-m", "a")
    work.write({"b.txt": "b\n"})
    env = {**work.env(), "FAIL": "3"}
    failed = subprocess.run(["git", "-C", str(work.path), "commit", "-q", "-m", "b"],
                            capture_output=True, text=True, env=env, check=False)
    removed = uninstall_hooks(work.path)

    assert [c.action for c in changes] == [HookAction.CHAINED, HookAction.INSTALLED]
    assert passed.returncode == 0
    assert failed.returncode != 0
    assert (work.path / ".git" / "chained.log").read_text() == "ran\nran\n"
    assert [c.action for c in removed] == [HookAction.RESTORED, HookAction.REMOVED]
    assert (hooks / "pre-commit").read_bytes() == original
    assert stat.S_IMODE((hooks / "pre-commit").stat().st_mode) == 0o750
    assert not (hooks / "pre-commit.incident-chained").exists()
    assert not (hooks / "pre-push").exists()


def test_pre_push_hook_passes_stdin_to_chained_hook_and_blocks(work: GitRepo,
                                                                tmp_path: Path) -> None:
    """The chained pre-push hook sees git's ref lines; ours blocks a pushed key."""
    remote = GitRepo.init(tmp_path / "remote.git", bare=True)
    work.git("remote", "add", "origin", str(remote.path))
    hooks = work.path / ".git" / "hooks"
    write_hook(hooks / "pre-push", 'cat > "$(git rev-parse --git-dir)/push.log"\n')
    install_hooks(work.path, ("pre-push",))

    clean = git(work, "push", "-q", "origin", "main")
    key = fake_key(seed="push")
    work.commit({"p.py": f"K = '{key}'\n"}, "leak")
    blocked = git(work, "push", "-q", "origin", "main")

    assert clean.returncode == 0, clean.stderr
    assert blocked.returncode != 0
    assert "p.py:1" in blocked.stdout + blocked.stderr
    assert key not in blocked.stdout + blocked.stderr
    log = (work.path / ".git" / "push.log").read_text()
    assert log.startswith(f"refs/heads/main {work.head()} refs/heads/main ")
    assert remote.git("rev-parse", "main") != work.head()


def test_install_honours_core_hooks_path(work: GitRepo) -> None:
    """With core.hooksPath set, the hooks go there and git runs them."""
    work.git("config", "core.hooksPath", "githooks")
    invoke(["guard", "install", str(work.path), "--hook", "pre-commit"], expected=0)
    work.write({"k.txt": fake_key(seed="hookspath") + "\n"})

    result = git(work, "commit", "-q", "-m", "x")

    assert is_guard_hook(work.path / "githooks" / "pre-commit")
    assert not (work.path / ".git" / "hooks" / "pre-commit").exists()
    assert result.returncode == 1


def test_install_refuses_when_chained_copy_exists(work: GitRepo) -> None:
    """A leftover chained copy next to a foreign hook is never overwritten."""
    hooks = work.path / ".git" / "hooks"
    hook = write_hook(hooks / "pre-commit", "exit 0\n")
    leftover = write_hook(hooks / "pre-commit.incident-chained", "exit 1\n")

    result = invoke(["guard", "install", str(work.path)], expected=3)

    assert "would overwrite" in result.stderr
    assert (hooks / "pre-commit").read_bytes() == hook
    assert (hooks / "pre-commit.incident-chained").read_bytes() == leftover
    with pytest.raises(RefusedError):
        install_hooks(work.path)


def test_reinstall_updates_and_keeps_chain_uninstall_leaves_foreign(
        work: GitRepo) -> None:
    """Installing twice keeps the chained hook; uninstall leaves others' hooks alone."""
    hooks = work.path / ".git" / "hooks"
    write_hook(hooks / "pre-commit", "exit 0\n")
    foreign = write_hook(hooks / "pre-push", "exit 0\n")
    install_hooks(work.path, ("pre-commit",))

    again = install_hooks(work.path, ("pre-commit",), python="/opt/py/bin/python3")
    removed = uninstall_hooks(work.path)

    assert again[0].action is HookAction.UPDATED
    assert again[0].chained == hooks / "pre-commit.incident-chained"
    assert [c.action for c in removed] == [HookAction.RESTORED, HookAction.FOREIGN]
    assert (hooks / "pre-push").read_bytes() == foreign


def test_hook_calls_the_installing_python_and_fails_closed(work: GitRepo) -> None:
    """The hook runs the given interpreter; if it is gone, the commit is refused."""
    install_hooks(work.path, ("pre-commit",), python="/opt/venv dir/bin/python")
    work.write({"a.txt": "clean\n"})

    text = (work.path / ".git" / "hooks" / "pre-commit").read_text()
    result = git(work, "commit", "-q", "-m", "clean")

    assert "python='/opt/venv dir/bin/python'" in text
    assert 'exec "$python" -P -m incident guard check' in text
    assert result.returncode == 1
    assert "incident guard install" in result.stderr


def test_allow_command_adds_entry_that_unblocks(work: GitRepo) -> None:
    """`guard allow FP --reason` writes the allowlist; the check then passes."""
    from incident.redact import fingerprint

    key = fake_key("sk_" + "test_", seed="allow-cli")
    work.write({"fixtures/k.json": f'{{"key": "{key}"}}\n'})
    invoke(["guard", "check", str(work.path)], expected=1)

    result = invoke(["guard", "allow", fingerprint(key), str(work.path),
                     "--reason", "fixture for refunds"], expected=0)
    invoke(["guard", "check", str(work.path)], expected=0)

    assert ".incident-allowlist.yaml" in result.stdout
    text = (work.path / ".incident-allowlist.yaml").read_text()
    assert fingerprint(key) in text and "fixture for refunds" in text
    assert key not in text


@pytest.mark.parametrize("args", [["-a"], ["--", "tracked.py"]])
def test_hook_sees_the_index_git_commit_uses(work: GitRepo, args: list[str]) -> None:
    """`git commit -a` and `git commit PATH` use a temporary index: still checked."""
    work.commit({"tracked.py": "x = 1\n"}, "tracked")
    install_hooks(work.path, ("pre-commit",))
    key = fake_key(seed="temp-index")
    (work.path / "tracked.py").write_text(f"x = '{key}'\n")

    result = git(work, "commit", "-q", "-m", "edit", *args)

    assert result.returncode == 1
    assert "tracked.py:1" in result.stdout + result.stderr


def test_install_and_uninstall_cli_report_each_hook(work: GitRepo,
                                                    tmp_path: Path) -> None:
    """The CLI names each hook and what it did; a bare repository is refused."""
    installed = invoke(["guard", "install", str(work.path)], expected=0)
    removed = invoke(["guard", "uninstall", str(work.path)], expected=0)
    again = invoke(["guard", "uninstall", str(work.path)], expected=0)
    bare = GitRepo.init(tmp_path / "b.git", bare=True)
    refused = invoke(["guard", "install", str(bare.path)], expected=2)

    assert "pre-commit: installed" in installed.stdout
    assert "pre-push: removed" in removed.stdout
    assert "pre-commit: not installed" in again.stdout
    assert "bare repository" in refused.stderr


def test_uninstall_message_says_the_hook_is_back(work: GitRepo) -> None:
    """The restored hook is named as restored, not as still kept aside."""
    write_hook(work.path / ".git" / "hooks" / "pre-commit", "exit 0\n")
    installed = invoke(["guard", "install", str(work.path)], 0)
    removed = invoke(["guard", "uninstall", str(work.path)], 0)

    assert "kept as" in installed.stdout
    assert "original hook restored" in removed.stdout
    assert "kept as" not in removed.stdout
