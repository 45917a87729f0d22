"""Delivery targets: file, env-file, exec, AWS Secrets Manager (moto on loopback)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import boto3
import pytest

from incident.delivery import (
    AwsSecretsManagerTarget,
    DeliveryError,
    EnvFileTarget,
    ExecTarget,
    FileTarget,
    anchor_target,
    deliver_secret,
    parse_target,
    read_env_variable,
    set_env_variable,
)
from incident.errors import UsageError
from tests.helpers.gitrepo import fake_key


@pytest.fixture
def secret() -> str:
    return fake_key(seed="delivery")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_file_target_writes_0600(tmp_path: Path, secret: str) -> None:
    """file:PATH holds exactly the secret, readable by the owner only."""
    target = FileTarget(tmp_path / "keys" / "stripe.key")

    target.deliver(secret)

    assert target.path.read_text().strip() == secret
    assert mode_of(target.path) == 0o600


def test_env_file_target_keeps_other_bytes(tmp_path: Path, secret: str) -> None:
    """Only the variable's value changes: comments, CRLF, quotes and order stay."""
    path = tmp_path / ".env"
    before = (
        b'# app settings\r\nDEBUG=1\r\nexport STRIPE_KEY="old-value"\r\n'
        b"OTHER_STRIPE_KEY=keep\r\n\r\nTAIL=x"
    )
    path.write_bytes(before)
    os.chmod(path, 0o640)

    EnvFileTarget(path, "STRIPE_KEY").deliver(secret)

    after = path.read_bytes()
    assert after == before.replace(b"old-value", secret.encode())
    assert mode_of(path) == 0o640


def test_env_file_target_appends_missing_variable(tmp_path: Path, secret: str) -> None:
    """A variable not yet in the file is appended on a line of its own."""
    path = tmp_path / ".env"
    path.write_bytes(b"A=1")

    EnvFileTarget(path, "STRIPE_KEY").deliver(secret)

    assert path.read_bytes() == b"A=1\nSTRIPE_KEY=" + secret.encode() + b"\n"


def test_env_file_new_file_is_0600(tmp_path: Path, secret: str) -> None:
    """A dotenv file created for the key is private."""
    path = tmp_path / "new.env"

    EnvFileTarget(path, "STRIPE_KEY").deliver(secret)

    assert read_env_variable(path.read_bytes(), "STRIPE_KEY") == secret
    assert mode_of(path) == 0o600


@pytest.mark.parametrize(
    "line,expected",
    [
        (b"K=v\n", b"K=new\n"),
        (b"K='v'\n", b"K='new'\n"),
        (b'  export K = "v"\n', b'  export K = "new"\n'),
        (b"KK=v\nK=v\n", b"KK=v\nK=new\n"),
    ],
)
def test_set_env_variable_cases(line: bytes, expected: bytes) -> None:
    """Quoting and spacing of an existing assignment are kept."""
    assert set_env_variable(line, "K", "new") == expected


def test_exec_target_gets_secret_on_stdin(tmp_path: Path, secret: str) -> None:
    """exec:COMMAND receives the secret on stdin, not in its arguments."""
    sink = tmp_path / "sink"

    ExecTarget(f"cat > {sink}").deliver(secret)

    assert sink.read_text().strip() == secret


def test_exec_target_failure_hides_secret(secret: str) -> None:
    """A failing command is reported with its stderr, the secret masked."""
    with pytest.raises(DeliveryError) as caught:
        ExecTarget("cat >&2; exit 3").deliver(secret)

    assert "exited with 3" in str(caught.value)
    assert secret not in str(caught.value)


def test_aws_secrets_manager_creates_then_updates(
    moto_server: str, secret: str
) -> None:
    """aws-secretsmanager: creates the secret, then stores a new version."""
    target = AwsSecretsManagerTarget("prod/stripe")
    newer = fake_key(seed="delivery-2")

    target.deliver(secret)
    target.deliver(newer)

    client = boto3.client("secretsmanager")
    assert client.get_secret_value(SecretId="prod/stripe")["SecretString"] == newer
    assert moto_server.startswith("http://127.0.0.1:")


def test_aws_secrets_manager_failure_is_delivery_error(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    """An unreachable endpoint becomes a DeliveryError without the secret."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

    with pytest.raises(DeliveryError) as caught:
        AwsSecretsManagerTarget("prod/stripe").deliver(secret)

    assert secret not in str(caught.value)


@pytest.mark.parametrize(
    "spec,kind",
    [
        ("file:/tmp/k", FileTarget),
        ("env-file:/srv/app/.env:STRIPE_SECRET_KEY", EnvFileTarget),
        ("aws-secretsmanager:prod/stripe", AwsSecretsManagerTarget),
        ("exec:vault kv put secret/stripe key=-", ExecTarget),
    ],
)
def test_parse_target_kinds(spec: str, kind: type) -> None:
    """Each --deliver form parses to its target."""
    assert isinstance(parse_target(spec), kind)


@pytest.mark.parametrize(
    "spec", ["", "file:", "env-file:/x", "env-file:/x:1BAD", "s3:bucket", "exec:  "]
)
def test_parse_target_refuses_bad_specs(spec: str) -> None:
    """A bad --deliver value is a usage error with the accepted forms."""
    with pytest.raises(UsageError) as caught:
        parse_target(spec)

    assert caught.value.hint and "env-file:PATH:VAR" in caught.value.hint


def test_deliver_secret_falls_back_to_emergency_file(
    tmp_path: Path, secret: str
) -> None:
    """When every target fails after retries, the key lands in a 0600 file."""
    blocked = tmp_path / "blocked"
    blocked.write_text("")  # a file where a folder is needed: writes fail
    sleeps: list[float] = []
    emergency = tmp_path / "incident" / "new-key.txt"

    outcome = deliver_secret(
        secret,
        [FileTarget(blocked / "k"), ExecTarget("exit 1")],
        emergency,
        attempts=3,
        sleep=sleeps.append,
    )

    assert outcome.delivered == []
    assert [d for d, _ in outcome.failed] == [f"file:{blocked / 'k'}", "exec:exit 1"]
    assert outcome.emergency_file == emergency
    assert emergency.read_text().strip() == secret
    assert mode_of(emergency) == 0o600
    assert len(sleeps) == 4  # two retries for each of the two targets


def test_deliver_secret_one_success_is_enough(tmp_path: Path, secret: str) -> None:
    """One confirmed target means no emergency file; failures are still listed."""
    good = FileTarget(tmp_path / "good")

    outcome = deliver_secret(
        secret, [ExecTarget("exit 2"), good], tmp_path / "e", attempts=1
    )

    assert outcome.delivered == [good.describe()]
    assert len(outcome.failed) == 1
    assert outcome.emergency_file is None and not (tmp_path / "e").exists()


def test_anchor_target_makes_paths_absolute_and_keeps_the_rest(tmp_path: Path) -> None:
    assert anchor_target("file:k/{fingerprint}.key", tmp_path) == (
        f"file:{tmp_path}/k/{{fingerprint}}.key")
    assert anchor_target("env-file:.env:STRIPE_KEY", tmp_path) == (
        f"env-file:{tmp_path}/.env:STRIPE_KEY")
    assert anchor_target("file:/etc/k", tmp_path) == "file:/etc/k"
    assert anchor_target("aws-secretsmanager:prod/x", tmp_path) == (
        "aws-secretsmanager:prod/x")
    assert anchor_target("exec:vault kv put a -", tmp_path).startswith(
        f"exec:cd {tmp_path} && ")
