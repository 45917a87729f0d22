"""``incident purge`` end to end: output, every exit code, no secret in any output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from incident.cli import main
from incident.rewrite.encodings import BlobAction, ReplaceOutcome, SecretReplacer
from tests.cli.helpers import invoke
from tests.helpers.gitrepo import GitRepo, fake_key

KEY = fake_key(seed="cli-purge")


@pytest.fixture
def leaky(tmp_path: Path) -> tuple[GitRepo, Path]:
    """A clone with a key in its history, published to a local bare remote."""
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    repo = GitRepo.init(tmp_path / "app")
    repo.commit({"app.py": f"stripe.api_key = '{KEY}'\n"}, "add stripe")
    repo.commit({"app.py": "stripe.api_key = os.environ['STRIPE_API_KEY']\n"}, "fix")
    repo.branch("protected")
    repo.git("remote", "add", "origin", str(remote))
    repo.git("push", "-q", "origin", "main", "protected")
    return repo, remote


def run_main(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real entry point in a subprocess, as a user's shell would."""
    return subprocess.run(
        [sys.executable, "-m", "incident", *args],
        input=input,
        capture_output=True,
        text=True,
        check=False,
    )


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert KEY not in text
        assert KEY[8:] not in text


def test_purge_cmd_dry_run_counts_and_changes_nothing(
    leaky: tuple[GitRepo, Path],
) -> None:
    """--dry-run prints what would change and exits 1 (keys found); refs are
    untouched."""
    repo, _ = leaky
    refs = repo.git("for-each-ref")

    result = invoke("purge", str(repo.path), "--dry-run", exit_code=1)

    assert "Would purge 1 key(s)" in result.stdout
    assert "Commits:    2 of 2 rewritten" in result.stdout
    assert "Dry run: nothing was changed" in result.stdout
    assert repo.git("for-each-ref") == refs
    assert_no_secret(result.stdout, result.stderr)


def test_purge_cmd_mirror_prints_backup_commands_and_request(
    leaky: tuple[GitRepo, Path], tmp_path: Path
) -> None:
    """The default run rewrites a mirror, verifies it and prints the push commands."""
    repo, remote = leaky

    result = invoke(
        "purge", str(repo.path), "--workdir", str(tmp_path / "wd"), exit_code=0
    )

    assert "Backup:" in result.stdout and "It holds the keys" in result.stdout
    assert "Verified clean at" in result.stdout
    assert "--force-with-lease=refs/heads/main:" in result.stdout
    assert str(remote) in result.stdout
    assert "Sensitive data removal request" in result.stdout
    assert "First changed commits:" in result.stdout
    assert_no_secret(result.stdout, result.stderr)


def test_purge_cmd_push_protected_branch_exits_5(
    leaky: tuple[GitRepo, Path], tmp_path: Path
) -> None:
    """--push: refused refs are explained per ref and the exit code is 5."""
    repo, remote = leaky
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\nwhile read o n ref; do\n"
        '[ "$ref" = refs/heads/protected ] && exit 1\ndone\nexit 0\n'
    )
    hook.chmod(0o755)

    result = invoke(
        "purge",
        str(repo.path),
        "--push",
        "--yes",
        "--incident-dir",
        str(tmp_path / "inc-1"),
        exit_code=5,
    )

    assert "ok         update refs/heads/main: done" in result.stdout
    assert (
        "NOT PUSHED update refs/heads/protected: refused by the remote" in result.stdout
    )
    assert (tmp_path / "inc-1" / "journal.jsonl").is_file()
    assert_no_secret(
        result.stdout, result.stderr, (tmp_path / "inc-1" / "journal.jsonl").read_text()
    )


def test_purge_cmd_in_place_answer_no_exits_3(leaky: tuple[GitRepo, Path]) -> None:
    """Saying no at the prompt stops before anything changes."""
    repo, _ = leaky
    head = repo.head()

    result = run_main("purge", "--in-place", str(repo.path), input="n\n")

    assert result.returncode == 3
    assert repo.head() == head


def test_purge_cmd_shallow_clone_exits_3(
    leaky: tuple[GitRepo, Path], tmp_path: Path
) -> None:
    """A shallow clone is refused with the command that fixes it."""
    _, remote = leaky
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{remote}", str(shallow)],
        check=True,
    )

    result = run_main("purge", str(shallow))

    assert result.returncode == 3
    assert "shallow clone" in result.stderr
    assert "fetch --unshallow" in result.stderr


def test_purge_cmd_dirty_in_place_exits_3(leaky: tuple[GitRepo, Path]) -> None:
    """--in-place with uncommitted changes is refused (exit 3)."""
    repo, _ = leaky
    (repo.path / "app.py").write_text("edited\n")

    result = run_main("purge", "--in-place", "--yes", str(repo.path))

    assert result.returncode == 3
    assert "uncommitted changes" in result.stderr


def test_purge_cmd_not_a_repository_exits_2(tmp_path: Path) -> None:
    """A folder without a repository is a usage error."""
    result = run_main("purge", str(tmp_path))

    assert result.returncode == 2
    assert "not a git repository" in result.stderr


def test_purge_cmd_clean_repository_exits_0(repo: GitRepo) -> None:
    """Nothing to purge is said plainly."""
    repo.commit({"a.txt": "clean\n"})

    result = invoke("purge", str(repo.path), exit_code=0)

    assert "nothing to purge" in result.stdout


def test_purge_cmd_key_left_behind_exits_1(
    leaky: tuple[GitRepo, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A failed verification names what remained, keeps the backup, exits 1."""
    repo, _ = leaky

    def broken(self: SecretReplacer, data: bytes) -> ReplaceOutcome:
        return ReplaceOutcome(data, BlobAction.UNCHANGED)

    monkeypatch.setattr(SecretReplacer, "replace", broken)

    with pytest.raises(SystemExit) as exited:
        main(["purge", str(repo.path), "--workdir", str(tmp_path / "wd")])

    captured = capsys.readouterr()
    assert exited.value.code == 1
    assert "NOT CLEAN" in captured.out
    assert "is NOT clean" in captured.err and "backup" in captured.err
    assert list((tmp_path / "wd").glob("*.bundle"))
    assert_no_secret(captured.out, captured.err)
