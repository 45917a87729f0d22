"""roll_keys over real HTTP against the sandbox: rotate, deliver, confirm, recover."""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from incident.errors import RefusedError, UsageError
from incident.journal import Journal
from incident.keys import LeakedKey, RollOptions, RollResult, RollStatus, roll_keys
from incident.sandbox import SandboxHandle, derive_key_id, start_sandbox
from tests.helpers.gitrepo import fake_key
from tests.sandbox.fixtures import LIVE_PREFIX


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal.create(tmp_path / ".incident", "inc-test")


def options_for(
    sandbox: SandboxHandle, tmp_path: Path, **overrides: object
) -> RollOptions:
    """Fast, loopback-only options with a file target in tmp_path."""
    base = RollOptions(
        api_key=sandbox.add_operator_key("live"),
        api_base=sandbox.url,
        deliver=(f"file:{tmp_path / 'delivered.key'}",),
        retry_seconds=3,
        confirm_timeout=5,
        delivery_attempts=1,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def minted(sandbox: SandboxHandle, result: RollResult) -> str:
    assert result.new_key_id is not None
    return sandbox.state.keys[result.new_key_id].secret


def assert_no_secret(journal: Journal, *secrets: str) -> None:
    text = journal.path.read_text()
    for secret in secrets:
        assert secret not in text


def test_roll_live_key_delivers_minted_secret(
    sandbox: SandboxHandle, live_key: str, journal: Journal, tmp_path: Path
) -> None:
    """A live key is rotated once, the decrypted key delivered, the old one rejected."""
    options = options_for(sandbox, tmp_path)

    [result] = roll_keys([LeakedKey.from_secret(live_key)], options, journal)

    assert result.status is RollStatus.ROLLED
    assert result.old_key_id == derive_key_id(live_key)
    assert (tmp_path / "delivered.key").read_text().strip() == minted(sandbox, result)
    assert result.delivered_to == [f"file:{tmp_path / 'delivered.key'}"]
    assert result.rotation_accepted_at and result.old_key_rejected_at
    assert len(sandbox.state.rotations_of(result.old_key_id)) == 1
    assert not list(journal.directory.glob("rotation-*.pem"))
    events = [e.event for e in journal.events()]
    assert (
        events.index("rotation-requested")
        < events.index("rotation-accepted")
        < events.index("delivered")
        < events.index("old-key-rejected")
    )
    assert_no_secret(journal, live_key, minted(sandbox, result), options.api_key or "")


def test_roll_test_key_with_leaked_key(
    sandbox: SandboxHandle, test_key: str, journal: Journal, tmp_path: Path
) -> None:
    """--use-leaked-key: a test key rotates itself; the old key is expired after."""
    options = options_for(sandbox, tmp_path, api_key=None, use_leaked_key=True)

    [result] = roll_keys([LeakedKey.from_secret(test_key)], options, journal)

    assert result.status is RollStatus.ROLLED
    assert (tmp_path / "delivered.key").read_text().strip() == minted(sandbox, result)
    assert derive_key_id(test_key) in sandbox.state.expirations
    assert result.old_key_rejected_at is not None
    assert journal.find("roll", "old-key-expired")


def test_roll_grace_keeps_old_key_until_expiry(
    sandbox: SandboxHandle, live_key: str, journal: Journal, tmp_path: Path
) -> None:
    """--grace N: the old key still works; the journal holds the scheduled expiry."""
    options = options_for(sandbox, tmp_path, grace_minutes=60)

    [result] = roll_keys([LeakedKey.from_secret(live_key)], options, journal)

    assert result.status is RollStatus.ROLLED
    assert result.old_key_rejected_at is None
    assert sandbox.state.rotations[0].expire_in_minutes == 60
    assert journal.find("roll", "old-key-expiry-scheduled")


def test_roll_waits_for_delayed_rejection(
    sandbox: SandboxHandle, live_key: str, journal: Journal, tmp_path: Path
) -> None:
    """Expiry that takes effect late is polled until the old key is rejected."""
    sandbox.state.rejection_lag = 1.0
    options = options_for(sandbox, tmp_path)

    [result] = roll_keys([LeakedKey.from_secret(live_key)], options, journal)

    assert result.old_key_rejected_at and result.rotation_accepted_at
    accepted = datetime.fromisoformat(
        result.rotation_accepted_at.replace("Z", "+00:00")
    )
    rejected = datetime.fromisoformat(result.old_key_rejected_at.replace("Z", "+00:00"))
    assert (rejected - accepted).total_seconds() >= 1.0


def test_roll_revoked_key_is_skipped(
    sandbox: SandboxHandle, live_key: str, journal: Journal, tmp_path: Path
) -> None:
    """A key Stripe already rejects is reported and not rotated."""
    sandbox.state.keys[derive_key_id(live_key)].expires_at = 1.0
    options = options_for(sandbox, tmp_path)

    [result] = roll_keys([LeakedKey.from_secret(live_key)], options, journal)

    assert result.status is RollStatus.ALREADY_REVOKED
    assert sandbox.state.rotations == []


def test_roll_other_mode_operator_key_not_found(
    sandbox: SandboxHandle, live_key: str, journal: Journal, tmp_path: Path
) -> None:
    """A test-mode STRIPE_API_KEY cannot see live keys: not-found, with the steps."""
    options = options_for(sandbox, tmp_path, api_key=sandbox.add_operator_key("test"))

    [result] = roll_keys([LeakedKey.from_secret(live_key)], options, journal)

    assert result.status is RollStatus.NOT_FOUND
    assert "same account and mode" in result.message
    assert "dashboard.stripe.com/apikeys" in result.message
    assert sandbox.state.rotations == []


def test_roll_ambiguous_redacted_match_refuses(
    journal: Journal, tmp_path: Path
) -> None:
    """Two active live keys with the same last four characters: refuse to guess."""
    first = fake_key(LIVE_PREFIX, seed="amb1")
    second = fake_key(LIVE_PREFIX, seed="amb2")[:-4] + first[-4:]
    with start_sandbox([first, second]) as sandbox:
        options = options_for(sandbox, tmp_path)

        [result] = roll_keys([LeakedKey.from_secret(first)], options, journal)

        assert result.status is RollStatus.AMBIGUOUS
        assert sandbox.state.rotations == []


def test_roll_webhook_secret_is_manual_step(
    sandbox: SandboxHandle, journal: Journal, tmp_path: Path
) -> None:
    """whsec_ secrets get Dashboard steps and an open manual step in the journal."""
    webhook = "whsec_" + fake_key(seed="hook")[8:40]
    options = options_for(sandbox, tmp_path)

    [result] = roll_keys([LeakedKey.from_secret(webhook)], options, journal)
    roll_keys([LeakedKey.from_secret(webhook)], options, journal)

    assert result.status is RollStatus.MANUAL_PENDING
    assert any("Roll secret" in step for step in result.manual_steps)
    [pending] = journal.find("roll", "manual-step-pending")
    assert pending.data["step_id"].startswith("roll-webhook-secret-")
    assert_no_secret(journal, webhook)


def test_roll_dry_run_calls_no_write_endpoint(
    sandbox: SandboxHandle, live_key: str, tmp_path: Path
) -> None:
    """--dry-run finds the key and plans, but POSTs nothing and needs no journal."""
    options = options_for(sandbox, tmp_path, dry_run=True)

    [result] = roll_keys([LeakedKey.from_secret(live_key)], options, None)

    assert result.status is RollStatus.DRY_RUN
    assert result.old_key_id == derive_key_id(live_key)
    assert all(method == "GET" for method, _ in sandbox.state.requests)
    assert not (tmp_path / "delivered.key").exists()


@pytest.mark.parametrize("grace", [-1, 10081])
def test_roll_refuses_grace_out_of_range(
    sandbox: SandboxHandle, live_key: str, journal: Journal, tmp_path: Path, grace: int
) -> None:
    """--grace outside Stripe's 0..10080 minutes is a usage error before any call."""
    with pytest.raises(UsageError):
        roll_keys(
            [LeakedKey.from_secret(live_key)],
            options_for(sandbox, tmp_path, grace_minutes=grace),
            journal,
        )

    assert sandbox.state.requests == []


def test_roll_without_credential_is_usage_error(
    live_key: str, journal: Journal
) -> None:
    """No STRIPE_API_KEY and no --use-leaked-key: refuse with the fix."""
    with pytest.raises(UsageError) as caught:
        roll_keys([LeakedKey.from_secret(live_key)], RollOptions(), journal)

    assert caught.value.hint and "--use-leaked-key" in caught.value.hint


@pytest.mark.parametrize("fault", ["429", "500"])
def test_roll_retries_transient_faults(
    sandbox: SandboxHandle, live_key: str, journal: Journal, tmp_path: Path, fault: str
) -> None:
    """429 and 500 on the rotate call are retried; one rotation results."""
    sandbox.inject(fault, method="POST", path_contains="/rotate", times=2)
    options = options_for(sandbox, tmp_path, max_network_retries=0)

    [result] = roll_keys([LeakedKey.from_secret(live_key)], options, journal)

    assert result.status is RollStatus.ROLLED
    assert len(sandbox.state.rotations) == 1
    assert (tmp_path / "delivered.key").read_text().strip() == minted(sandbox, result)


def test_roll_slow_response_times_out_and_replays(
    sandbox: SandboxHandle, live_key: str, journal: Journal, tmp_path: Path
) -> None:
    """A rotate answer slower than the timeout is retried with the same key."""
    sandbox.inject("slow", method="POST", path_contains="/rotate", delay=1.0)
    options = options_for(
        sandbox, tmp_path, request_timeout=0.4, max_network_retries=0, retry_seconds=10
    )

    [result] = roll_keys([LeakedKey.from_secret(live_key)], options, journal)

    assert result.status is RollStatus.ROLLED
    assert len(sandbox.state.rotations) == 1
    assert (tmp_path / "delivered.key").read_text().strip() == minted(sandbox, result)


def test_roll_401_on_rotate_fails_then_rerun_rolls_once(
    sandbox: SandboxHandle, live_key: str, journal: Journal, tmp_path: Path
) -> None:
    """A refused credential stops the key; the re-run sends the same request once."""
    sandbox.inject("401", method="POST", path_contains="/rotate")
    options = options_for(sandbox, tmp_path)

    [first] = roll_keys([LeakedKey.from_secret(live_key)], options, journal)
    [second] = roll_keys([LeakedKey.from_secret(live_key)], options, journal)

    assert first.status is RollStatus.FAILED
    assert "--incident inc-test" in first.message
    assert second.status is RollStatus.ROLLED
    assert len(sandbox.state.rotations) == 1
    assert len(journal.find("roll", "rotation-requested")) == 1


def test_roll_dropped_connection_recovers_on_rerun(
    sandbox: SandboxHandle, live_key: str, journal: Journal, tmp_path: Path
) -> None:
    """Rotation applied, answer lost: the re-run replays it, same new key, once."""
    sandbox.inject("drop-after-apply", method="POST", path_contains="/rotate")
    options = options_for(sandbox, tmp_path, max_network_retries=0, retry_seconds=0)

    [first] = roll_keys([LeakedKey.from_secret(live_key)], options, journal)
    assert first.status is RollStatus.FAILED
    assert len(sandbox.state.rotations) == 1
    [key_file] = journal.directory.glob("rotation-*.pem")  # kept for the replay
    assert str(key_file) in first.message
    assert "incident roll --incident inc-test" in first.message

    [second] = roll_keys([LeakedKey.from_secret(live_key)], options, journal)

    assert second.status is RollStatus.ROLLED
    assert len(sandbox.state.rotations) == 1
    assert second.new_key_id == sandbox.state.rotations[0].new_key_id
    assert (tmp_path / "delivered.key").read_text().strip() == minted(sandbox, second)


def test_roll_crash_before_delivery_recovers(
    sandbox: SandboxHandle, live_key: str, journal: Journal, tmp_path: Path
) -> None:
    """A crash right after Stripe accepted the rotation loses nothing on re-run."""

    def crash(event: str, _fingerprint: str) -> None:
        if event == "rotation-accepted":
            raise KeyboardInterrupt("simulated crash")

    options = options_for(sandbox, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        roll_keys(
            [LeakedKey.from_secret(live_key)], replace(options, on_event=crash), journal
        )
    assert not (tmp_path / "delivered.key").exists()

    [result] = roll_keys([LeakedKey.from_secret(live_key)], options, journal)

    assert result.status is RollStatus.ROLLED
    assert len(sandbox.state.rotations) == 1
    assert (tmp_path / "delivered.key").read_text().strip() == minted(sandbox, result)
    assert len(journal.find("roll", "rotation-accepted")) == 1


def test_roll_crash_after_delivery_resumes_confirmation(
    sandbox: SandboxHandle, live_key: str, journal: Journal, tmp_path: Path
) -> None:
    """A crash after delivery: the re-run only confirms; no rotation, no re-delivery."""

    def crash(event: str, _fingerprint: str) -> None:
        if event == "rotation-key-destroyed":
            raise KeyboardInterrupt("simulated crash")

    options = options_for(sandbox, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        roll_keys(
            [LeakedKey.from_secret(live_key)], replace(options, on_event=crash), journal
        )

    [result] = roll_keys([LeakedKey.from_secret(live_key)], options, journal)

    assert result.status is RollStatus.ROLLED
    assert result.old_key_rejected_at is not None
    assert len(sandbox.state.rotations) == 1
    assert len(journal.find("roll", "delivered")) == 1


def test_roll_failed_delivery_keeps_key_in_emergency_file(
    sandbox: SandboxHandle, live_key: str, journal: Journal, tmp_path: Path
) -> None:
    """Every target failing still leaves the new key in a 0600 file, named."""
    options = options_for(sandbox, tmp_path, deliver=("exec:exit 7",))

    [result] = roll_keys([LeakedKey.from_secret(live_key)], options, journal)

    assert result.status is RollStatus.ROLLED
    assert result.emergency_file is not None
    assert result.emergency_file.parent == journal.directory
    assert result.emergency_file.read_text().strip() == minted(sandbox, result)
    assert stat.S_IMODE(os.stat(result.emergency_file).st_mode) == 0o600
    assert str(result.emergency_file) in result.message


def test_roll_logs_hold_no_secret(
    sandbox: SandboxHandle,
    live_key: str,
    journal: Journal,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At DEBUG, no log record carries the leaked, operator or new key."""
    caplog.set_level(logging.DEBUG)
    options = options_for(sandbox, tmp_path)

    [result] = roll_keys([LeakedKey.from_secret(live_key)], options, journal)

    text = caplog.text + repr(result) + str(result.to_dict())
    for secret in (live_key, options.api_key or "", minted(sandbox, result)):
        assert secret not in text


def test_roll_restricted_key_with_operator_key(
    journal: Journal, tmp_path: Path
) -> None:
    """A leaked restricted key (403 on /v1/account) counts as live and is rolled."""
    restricted = fake_key("rk_" + "live_", seed="restricted")
    with start_sandbox([restricted]) as sandbox:
        options = options_for(sandbox, tmp_path)

        [result] = roll_keys([LeakedKey.from_secret(restricted)], options, journal)

        assert result.status is RollStatus.ROLLED
        assert minted(sandbox, result).startswith("rk_" + "live_")


def test_roll_refuses_new_incident_over_unfinished_rotation(
    sandbox: SandboxHandle, live_key: str, journal: Journal, tmp_path: Path
) -> None:
    """A second incident must not rotate a key another incident is mid-way through."""
    sandbox.inject("drop-after-apply", method="POST", path_contains="/rotate")
    options = options_for(sandbox, tmp_path, max_network_retries=0, retry_seconds=0)
    roll_keys([LeakedKey.from_secret(live_key)], options, journal)
    second = Journal.create(journal.directory.parent, "inc-second")

    with pytest.raises(RefusedError) as caught:
        roll_keys([LeakedKey.from_secret(live_key)], options, second)

    assert caught.value.hint == "Resume it: incident roll --incident inc-test"
    assert len(sandbox.state.rotations) == 1


def test_roll_test_mode_debug_logs_hold_no_token(
    sandbox: SandboxHandle,
    test_key: str,
    journal: Journal,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Test-mode responses carry plaintext tokens; none reaches the DEBUG logs."""
    caplog.set_level(logging.DEBUG)
    options = options_for(sandbox, tmp_path, api_key=None, use_leaked_key=True)

    [result] = roll_keys([LeakedKey.from_secret(test_key)], options, journal)

    assert result.status is RollStatus.ROLLED
    for secret in (test_key, minted(sandbox, result)):
        assert secret not in caplog.text


def test_roll_refuses_stripe_log_debug(
    sandbox: SandboxHandle,
    live_key: str,
    journal: Journal,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """STRIPE_LOG=debug would print bodies past the filters: refuse before calling."""
    monkeypatch.setenv("STRIPE_LOG", "debug")

    with pytest.raises(UsageError):
        roll_keys(
            [LeakedKey.from_secret(live_key)], options_for(sandbox, tmp_path), journal
        )

    assert sandbox.state.requests == []


@pytest.mark.parametrize(
    "base", ["http://stripe.example.com", "ftp://127.0.0.1", "http://10.0.0.1:12111"]
)
def test_roll_refuses_api_base_without_tls(
    live_key: str, journal: Journal, base: str
) -> None:
    """Keys never travel in clear text off this machine."""
    options = RollOptions(api_key=fake_key(seed="op"), api_base=base)

    with pytest.raises(UsageError) as caught:
        roll_keys([LeakedKey.from_secret(live_key)], options, journal)

    assert "TLS" in caught.value.message


def test_roll_delivers_to_every_target_kind(
    sandbox: SandboxHandle,
    live_key: str,
    journal: Journal,
    tmp_path: Path,
    moto_server: str,
) -> None:
    """file, env-file, aws-secretsmanager (moto) and exec all get the minted key."""
    import boto3

    env_file, sink, plain = tmp_path / ".env", tmp_path / "sink", tmp_path / "k"
    env_file.write_text("A=1\nSTRIPE_KEY=old\n")
    targets = (
        f"file:{plain}",
        f"env-file:{env_file}:STRIPE_KEY",
        "aws-secretsmanager:prod/stripe",
        f"exec:cat > {sink}",
    )
    options = options_for(sandbox, tmp_path, deliver=targets)

    [result] = roll_keys([LeakedKey.from_secret(live_key)], options, journal)

    new_secret = minted(sandbox, result)
    assert result.delivered_to == list(targets)
    assert plain.read_text().strip() == new_secret
    assert env_file.read_text() == f"A=1\nSTRIPE_KEY={new_secret}\n"
    assert sink.read_text().strip() == new_secret
    stored = boto3.client("secretsmanager").get_secret_value(SecretId="prod/stripe")
    assert stored["SecretString"] == new_secret
    assert moto_server.startswith("http://127.0.0.1:")


def test_roll_refuses_one_target_for_several_keys(
    sandbox: SandboxHandle, live_key: str, tmp_path: Path, journal: Journal
) -> None:
    """The second new key would overwrite the first: refuse before any rotation."""
    other = fake_key(LIVE_PREFIX, seed="other-live")
    keys = [LeakedKey.from_secret(live_key), LeakedKey.from_secret(other)]
    with pytest.raises(UsageError, match="overwrite"):
        roll_keys(keys, options_for(sandbox, tmp_path), journal)
    assert not journal.find("roll", "rotation-requested")


def test_roll_fills_placeholders_per_key(
    sandbox: SandboxHandle, live_key: str, tmp_path: Path, journal: Journal
) -> None:
    other = fake_key(LIVE_PREFIX, seed="other-live")
    keys = [LeakedKey.from_secret(live_key), LeakedKey.from_secret(other)]
    env_file = tmp_path / ".env"
    options = options_for(
        sandbox,
        tmp_path,
        deliver=(
            f"file:{tmp_path}/new-{{fingerprint}}.key",
            f"env-file:{env_file}:STRIPE_KEY_{{index}}",
        ),
    )
    results = roll_keys(keys, options, journal)
    assert [r.status for r in results] == [RollStatus.ROLLED] * 2
    env = env_file.read_text()
    for index, (key, result) in enumerate(zip(keys, results, strict=True), 1):
        path = tmp_path / f"new-{key.fingerprint[:12]}.key"
        assert path.read_text().strip() == minted(sandbox, result)
        assert f"STRIPE_KEY_{index}={minted(sandbox, result)}" in env
