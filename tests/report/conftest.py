"""A realistic synthetic incident journal, written with a fixed clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from incident.journal import Journal
from incident.redact import fingerprint, redact
from tests.helpers.gitrepo import fake_key

ALICE = "Alice Ops <alice@example.com>"
BOB = "Bob Sec <bob@example.com>"
JOURNAL_START = datetime(2024, 2, 1, 10, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Keys:
    """The fake secrets of the story; only tests ever hold their values."""

    api: str
    webhook: str
    new_api: str

    @property
    def values(self) -> tuple[str, str, str]:
        return (self.api, self.webhook, self.new_api)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[], str]:
    """Journal times advance one minute per event from 2024-02-01T10:00:00Z."""
    ticks = iter(range(10_000))

    def now() -> str:
        moment = JOURNAL_START + timedelta(minutes=next(ticks))
        return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")

    monkeypatch.setattr("incident.journal.utc_now", now)
    return now


@pytest.fixture
def keys() -> Keys:
    """A live secret key, a webhook signing secret and the rolled replacement."""
    return Keys(
        api=fake_key(seed="report-api"),
        webhook=fake_key(prefix="whsec_", seed="report-webhook", length=32),
        new_api=fake_key(seed="report-new-api"),
    )


def step_id_of(keys: Keys) -> str:
    return f"roll-webhook-secret-{fingerprint(keys.webhook)[:12]}"


def write_story(directory: Path, keys: Keys, commit_map: Path | None = None) -> Journal:
    """Detect two keys, roll one (used after the leak), open a webhook step, purge.

    The API key was pushed and later removed from every tip; the webhook secret is
    still at the tip of main and was never pushed.
    """
    journal = Journal.create(directory, "inc-test")
    api, hook = fingerprint(keys.api), fingerprint(keys.webhook)
    add = journal.append

    add(
        "respond",
        "started",
        actor=ALICE,
        repo="/srv/shop",
        playbook="p.yaml",
        playbook_name="stripe-key-leak",
        playbook_version=1,
        dry_run=False,
        options={},
    )
    add(
        "detect",
        "step-started",
        actor=ALICE,
        title="Find every key",
        phase="identify",
        action="scan",
    )
    add(
        "detect",
        "finding",
        actor=ALICE,
        fingerprint=api,
        redacted=redact(keys.api),
        kind="secret_key",
        mode="live",
        severity="critical",
        reachable=True,
        first_seen={
            "commit": "a" * 40,
            "author_name": "Dana Dev",
            "author_email": "dana@example.com",
            "author_date": "2023-12-31T23:00:00Z",
            "committer_date": "2024-01-01T00:00:00Z",
        },
        refs=[
            {
                "name": "refs/heads/main",
                "since": "2024-01-01T00:00:00Z",
                "commit": "a" * 40,
            },
            {
                "name": "refs/remotes/origin/main",
                "since": "2024-01-01T02:00:00Z",
                "commit": "a" * 40,
            },
        ],
        present_at_tips=[],
        pushed=True,
        left_tips=[
            {
                "ref": "refs/heads/main",
                "commit": "b" * 40,
                "time": "2024-01-02T00:00:00Z",
            },
            {
                "ref": "refs/remotes/origin/main",
                "commit": "b" * 40,
                "time": "2024-01-02T01:00:00Z",
            },
        ],
        locations=2,
        location_sample=[],
    )
    add(
        "detect",
        "finding",
        actor=ALICE,
        fingerprint=hook,
        redacted=redact(keys.webhook),
        kind="webhook_secret",
        mode="unknown",
        severity="high",
        reachable=True,
        first_seen={
            "commit": "c" * 40,
            "author_name": "Eve Eng",
            "author_email": "eve@example.com",
            "author_date": "2024-01-03T00:00:00Z",
            "committer_date": "2024-01-03T00:00:00Z",
        },
        refs=[
            {
                "name": "refs/heads/main",
                "since": "2024-01-03T00:00:00Z",
                "commit": "c" * 40,
            }
        ],
        present_at_tips=["refs/heads/main"],
        pushed=False,
        left_tips=[],
        locations=1,
        location_sample=[],
    )
    add(
        "detect",
        "scan-done",
        actor=ALICE,
        findings=2,
        incomplete=False,
        unscanned=[],
        objects=120,
        scanned_at="2024-02-01T10:04:00Z",
    )
    add(
        "detect",
        "step-done",
        actor=ALICE,
        title="Find every key",
        phase="identify",
        action="scan",
        summary="2 keys found",
    )
    add(
        "assess",
        "liveness-checked",
        actor=ALICE,
        fingerprint=api,
        redacted=redact(keys.api),
        liveness="live",
        checked_at="2024-02-01T10:06:00Z",
    )
    add(
        "roll",
        "roll-started",
        actor=ALICE,
        fingerprint=None,
        keys=[api, hook],
        dry_run=False,
        grace_minutes=0,
        targets=["env-file:.env"],
        credential="leaked-key",
    )
    add(
        "roll",
        "key-found",
        actor=ALICE,
        fingerprint=api,
        redacted=redact(keys.api),
        key_id="ak_old1",
        last_used="2024-01-15T12:00:00Z",
        name="default",
        status="active",
    )
    add(
        "roll",
        "rotation-requested",
        actor=ALICE,
        fingerprint=api,
        redacted=redact(keys.api),
        key_id="ak_old1",
        last_used="2024-01-15T12:00:00Z",
        requested_at="2024-02-01T10:09:00Z",
    )
    add(
        "roll",
        "rotation-accepted",
        actor=ALICE,
        fingerprint=api,
        old_key_id="ak_old1",
        new_key_id="ak_new2",
        new_fingerprint=fingerprint(keys.new_api),
        new_redacted=redact(keys.new_api),
        accepted_at="2024-02-01T10:10:00Z",
        old_key_expires_at="2024-02-01T10:20:00Z",
    )
    add(
        "roll",
        "delivered",
        actor=ALICE,
        fingerprint=api,
        new_key_id="ak_new2",
        new_fingerprint=fingerprint(keys.new_api),
        targets=["env-file:.env"],
        failed=[],
    )
    add(
        "roll",
        "new-key-confirmed",
        actor=ALICE,
        fingerprint=api,
        new_key_id="ak_new2",
        liveness="live",
    )
    add("roll", "old-key-expired", actor=ALICE, fingerprint=api, old_key_id="ak_old1")
    add(
        "roll",
        "old-key-rejected",
        actor=ALICE,
        fingerprint=api,
        old_key_id="ak_old1",
        rejected_at="2024-02-01T10:15:30.500000Z",
    )
    add(
        "roll",
        "manual-step-pending",
        actor=ALICE,
        fingerprint=hook,
        step_id=step_id_of(keys),
        redacted=redact(keys.webhook),
        title="Roll the webhook signing secret in the Stripe Dashboard",
        instructions=[
            "Open https://dashboard.stripe.com/webhooks.",
            "Roll the secret of the endpoint.",
        ],
    )
    first_changed = ["d" * 40, "e" * 40]
    add(
        "purge",
        "backup-started",
        actor=ALICE,
        repo="/srv/shop",
        path="/srv/backup.bundle",
    )
    add(
        "purge", "backup-done", actor=ALICE, repo="/srv/shop", path="/srv/backup.bundle"
    )
    add(
        "purge",
        "rewrite-started",
        actor=ALICE,
        repo="/srv/shop",
        target="/srv/shop-purged.git",
        keys=[
            {"redacted": redact(k), "fingerprint": fingerprint(k)}
            for k in (keys.api, keys.webhook)
        ],
    )
    add(
        "purge",
        "rewrite-done",
        actor=ALICE,
        repo="/srv/shop",
        target="/srv/shop-purged.git",
        backup="/srv/backup.bundle",
        commit_map=str(commit_map or "/nonexistent/commit-map"),
        commits_rewritten=7,
        first_changed=first_changed,
        refs_changed=3,
        removed_files=0,
    )
    add(
        "purge",
        "verify-started",
        actor=ALICE,
        repo="/srv/shop",
        target="/srv/shop-purged.git",
    )
    add(
        "purge",
        "verify-done",
        actor=ALICE,
        repo="/srv/shop",
        target="/srv/shop-purged.git",
        clean=True,
        remnants=0,
        checked_at="2024-02-01T10:22:00Z",
    )
    add(
        "purge",
        "push-started",
        actor=ALICE,
        repo="/srv/shop",
        remote="https://git.example.com/shop.git",
        refs=2,
    )
    for name in ("refs/heads/main", "refs/tags/v1"):
        add(
            "purge",
            "push-ref",
            actor=ALICE,
            repo="/srv/shop",
            ref_id=name,
            name=name,
            action="force-update",
            ok=True,
            detail="",
        )
    add(
        "purge",
        "push-done",
        actor=ALICE,
        repo="/srv/shop",
        remote="https://git.example.com/shop.git",
        refused=0,
    )
    add("respond", "finished", actor=ALICE, status="manual-steps-open")
    return journal


@pytest.fixture
def story(tmp_path: Path, clock: Callable[[], str], keys: Keys) -> Journal:
    """The incident journal of the usual story, under tmp_path/.incident."""
    return write_story(tmp_path / ".incident", keys)
