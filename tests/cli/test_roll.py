"""``incident roll`` and ``incident sandbox`` end to end, against the sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from incident.cli import main
from incident.sandbox import SandboxHandle, derive_key_id, start_sandbox
from tests.helpers.gitrepo import GitRepo, fake_key
from tests.sandbox.fixtures import LIVE_PREFIX, TEST_PREFIX


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def invoke(
    args: list[str], env: dict[str, str] | None = None, input: str | None = None
) -> Run:
    """Run the real main() (exit-code mapping included) with captured streams."""
    runner = CliRunner()
    with runner.isolation(input=input, env=env) as (stdout, stderr, _):
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        return Run(code, stdout.getvalue().decode(), stderr.getvalue().decode())


@pytest.fixture
def leak() -> str:
    return fake_key(LIVE_PREFIX, seed="cli-leak")


@pytest.fixture
def leaky_repo(tmp_path: Path, leak: str) -> GitRepo:
    """A repository that committed a live key, then removed it."""
    repo = GitRepo.init(tmp_path / "app")
    repo.commit({"config.py": f'STRIPE_KEY = "{leak}"\n'}, "add stripe")
    repo.commit(
        {"config.py": "import os\nSTRIPE_KEY = os.environ['STRIPE_KEY']\n"},
        "read key from env",
    )
    return repo


@pytest.fixture
def sandbox(leak: str) -> Iterator[SandboxHandle]:
    with start_sandbox([leak, fake_key(LIVE_PREFIX, seed="bystander")]) as handle:
        yield handle


def env_for(sandbox: SandboxHandle) -> dict[str, str]:
    return {
        "STRIPE_API_KEY": sandbox.add_operator_key("live"),
        "INCIDENT_STRIPE_API_BASE": sandbox.url,
    }


def all_text(run: Run, incident_root: Path) -> str:
    journals = "".join(p.read_text() for p in incident_root.rglob("journal.jsonl"))
    return run.stdout + run.stderr + journals


def test_roll_cmd_rolls_repo_key_into_env_file(
    leaky_repo: GitRepo, leak: str, sandbox: SandboxHandle, tmp_path: Path
) -> None:
    """The scan finds the leaked key; it is rotated and the env file updated."""
    env_file = tmp_path / "prod.env"
    env_file.write_text("DEBUG=0\nSTRIPE_KEY=old\n")
    env = env_for(sandbox)

    run = invoke(
        [
            "roll",
            str(leaky_repo.path),
            "--yes",
            "--deliver",
            f"env-file:{env_file}:STRIPE_KEY",
        ],
        env=env,
    )

    assert run.code == 0, run
    [rotation] = sandbox.state.rotations
    new_secret = sandbox.state.keys[rotation.new_key_id].secret
    assert env_file.read_text() == f"DEBUG=0\nSTRIPE_KEY={new_secret}\n"
    assert "rolled" in run.stdout and rotation.old_key_id in run.stdout
    assert str(env_file) in run.stderr
    text = all_text(run, leaky_repo.path / ".incident")
    for secret in (leak, new_secret, env["STRIPE_API_KEY"]):
        assert secret not in text
    assert "/.incident/" in (leaky_repo.path / ".git" / "info" / "exclude").read_text()


def test_roll_cmd_dry_run_changes_nothing(
    leaky_repo: GitRepo, sandbox: SandboxHandle, leak: str
) -> None:
    """--dry-run shows the plan; no POST, no incident folder."""
    run = invoke(["roll", str(leaky_repo.path), "--dry-run"], env=env_for(sandbox))

    assert run.code == 0, run
    assert "dry-run" in run.stdout and derive_key_id(leak) in run.stdout
    assert all(method == "GET" for method, _ in sandbox.state.requests)
    assert not (leaky_repo.path / ".incident").exists()


def test_roll_cmd_without_credential_is_usage_error(
    leaky_repo: GitRepo, sandbox: SandboxHandle
) -> None:
    """No STRIPE_API_KEY and no --use-leaked-key: exit 2 with the fix."""
    run = invoke(["roll", str(leaky_repo.path), "--yes", "--api-base", sandbox.url])

    assert run.code == 2, run
    assert "--use-leaked-key" in run.stderr
    assert sandbox.state.rotations == []


def test_roll_cmd_answer_no_refuses(
    leaky_repo: GitRepo, sandbox: SandboxHandle
) -> None:
    """Answering no at the prompt exits 3 and rotates nothing."""
    run = invoke(["roll", str(leaky_repo.path)], env=env_for(sandbox), input="n\n")

    assert run.code == 3, run
    assert sandbox.state.rotations == []


def test_roll_cmd_grace_over_limit_is_usage_error(leaky_repo: GitRepo) -> None:
    """--grace beyond 10080 minutes is refused by the option itself."""
    run = invoke(["roll", str(leaky_repo.path), "--grace", "10081"])

    assert run.code == 2, run


def test_roll_cmd_stripe_failure_exit_4_then_resume(
    leaky_repo: GitRepo, leak: str, sandbox: SandboxHandle, tmp_path: Path
) -> None:
    """A refused rotate call exits 4; --incident ID resumes and rotates once."""
    sandbox.inject("401", method="POST", path_contains="/rotate")
    env = env_for(sandbox)
    target = tmp_path / "new.key"
    args = ["roll", str(leaky_repo.path), "--yes", "--deliver", f"file:{target}"]

    first = invoke(args, env=env)
    [incident] = [p.name for p in (leaky_repo.path / ".incident").iterdir()]
    second = invoke([*args, "--incident", incident], env=env)

    assert first.code == 4, first
    assert "--incident" in first.stderr
    assert second.code == 0, second
    [rotation] = sandbox.state.rotations
    assert target.read_text().strip() == sandbox.state.keys[rotation.new_key_id].secret


def test_roll_cmd_key_env_webhook_prints_manual_steps(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    """--key-env with a whsec_ secret: Dashboard steps, exit 1, step left open."""
    webhook = "whsec_" + fake_key(seed="cli-hook")[8:40]
    env = {**env_for(sandbox), "HOOK": webhook}

    run = invoke(
        [
            "roll",
            "--key-env",
            "HOOK",
            "--yes",
            "--incident-dir",
            str(tmp_path / "incidents"),
        ],
        env=env,
    )

    assert run.code == 1, run
    assert "manual-pending" in run.stdout
    assert "Roll secret" in run.stderr and "incident step done" in run.stderr
    assert webhook not in all_text(run, tmp_path / "incidents")


def test_roll_cmd_key_env_test_key_with_leaked_key(tmp_path: Path) -> None:
    """--key-env VAR --use-leaked-key rolls a test key; new key in emergency file."""
    test_secret = fake_key(TEST_PREFIX, seed="cli-test")
    with start_sandbox([test_secret]) as sandbox:
        env = {"LEAKED": test_secret, "INCIDENT_STRIPE_API_BASE": sandbox.url}

        run = invoke(
            [
                "roll",
                "--key-env",
                "LEAKED",
                "--use-leaked-key",
                "--yes",
                "--incident-dir",
                str(tmp_path / "inc"),
            ],
            env=env,
        )

        assert run.code == 0, run
        [rotation] = sandbox.state.rotations
        [emergency] = (tmp_path / "inc").rglob("new-key-*.txt")
        assert (
            emergency.read_text().strip()
            == sandbox.state.keys[rotation.new_key_id].secret
        )
        assert str(emergency) in run.stderr.replace("\n", "")


def test_roll_cmd_key_env_refuses_non_key(tmp_path: Path) -> None:
    """--key-env naming a variable without a key is a usage error, value not shown."""
    run = invoke(
        ["roll", "--key-env", "NOPE", "--use-leaked-key", "--yes"],
        env={"NOPE": "hunter2-not-a-key"},
    )

    assert run.code == 2, run
    assert "hunter2" not in run.stdout + run.stderr


def test_sandbox_cmd_serves_seeded_keys(tmp_path: Path) -> None:
    """`incident sandbox --port 0 --seed-key-file F` prints its URL and serves."""
    leaked = fake_key(LIVE_PREFIX, seed="served")
    seed_file = tmp_path / "keys.txt"
    seed_file.write_text(f"STRIPE_KEY={leaked}\n")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "incident",
            "sandbox",
            "--port",
            "0",
            "--seed-key-file",
            str(seed_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()

        response = requests.get(
            url + "/v1/account",
            headers={"Authorization": f"Bearer {leaked}"},
            timeout=10,
        )
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)

    assert url.startswith("http://127.0.0.1:")
    assert response.status_code == 200
    assert derive_key_id(leaked) in stderr and leaked not in stderr


def test_roll_cmd_killed_during_delivery_resumes(
    leaky_repo: GitRepo, sandbox: SandboxHandle, tmp_path: Path
) -> None:
    """SIGKILL after Stripe accepted the rotation: the re-run delivers the same key."""
    import signal
    import time

    env = {
        **os.environ,
        **env_for(sandbox),
        "PYTHONPATH": str(Path(__file__).parents[2]),
    }
    incidents = tmp_path / "incidents"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "incident",
            "roll",
            str(leaky_repo.path),
            "--yes",
            "--incident-dir",
            str(incidents),
            "--deliver",
            "exec:sleep 60",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            journals = list(incidents.glob("*/journal.jsonl"))
            if journals and "rotation-accepted" in journals[0].read_text():
                break
            time.sleep(0.05)
        else:
            pytest.fail("the rotation was never accepted")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    [journal_dir] = [p.parent for p in incidents.glob("*/journal.jsonl")]
    target = tmp_path / "new.key"

    run = invoke(
        [
            "roll",
            str(leaky_repo.path),
            "--yes",
            "--incident-dir",
            str(incidents),
            "--incident",
            journal_dir.name,
            "--deliver",
            f"file:{target}",
        ],
        env=env,
    )

    assert run.code == 0, run
    [rotation] = sandbox.state.rotations
    assert target.read_text().strip() == sandbox.state.keys[rotation.new_key_id].secret
    assert not list(journal_dir.glob("rotation-*.pem"))


def test_sandbox_seed_from_repo_finds_history_keys(
    leaky_repo: GitRepo, leak: str
) -> None:
    """--seed-from REPO seeds the keys found anywhere in the repository's history."""
    from incident.cli.sandbox import _seed_values

    assert _seed_values(leaky_repo.path, None) == [leak]


def test_roll_cmd_not_a_repository_is_usage_error(tmp_path: Path) -> None:
    """A REPO that is not a git repository exits 2 and says so."""
    run = invoke(["roll", str(tmp_path / "nowhere"), "--use-leaked-key", "--yes"])

    assert run.code == 2, run
