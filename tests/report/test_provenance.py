"""Whose use Stripe's last_used shows, and which keys decide containment."""

from __future__ import annotations

from pathlib import Path

from incident.journal import Journal
from incident.redact import fingerprint, redact
from incident.report.render import render_markdown
from incident.report.timeline import build_timeline
from tests.helpers.gitrepo import fake_key

COMMITTED = "2024-01-01T00:00:00Z"
CHECK_STARTED = "2024-03-01T09:00:00.000000Z"
CHECK_DONE = "2024-03-01T09:00:01.000000Z"


def _finding(journal: Journal, secret: str, mode: str = "live") -> None:
    journal.append(
        "detect",
        "finding",
        fingerprint=fingerprint(secret),
        redacted=redact(secret),
        kind="secret_key",
        mode=mode,
        first_seen={"commit": "a" * 40, "committer_date": COMMITTED},
        refs=[],
        present_at_tips=[],
    )


def _checked(
    journal: Journal, secret: str, last_used: str | None, key_id: str | None = None
) -> None:
    journal.append(
        "assess",
        "liveness-checked",
        fingerprint=fingerprint(secret),
        liveness="live",
        started_at=CHECK_STARTED,
        checked_at=CHECK_DONE,
        key_id=key_id,
        last_used=last_used,
    )


def _found(journal: Journal, secret: str, last_used: str) -> None:
    journal.append(
        "roll", "key-found", fingerprint=fingerprint(secret), key_id="ak_1",
        last_used=last_used,
    )  # fmt: skip


def _rotated(journal: Journal, secret: str) -> None:
    journal.append(
        "roll",
        "rotation-accepted",
        fingerprint=fingerprint(secret),
        old_key_id="ak_1",
        new_key_id="ak_2",
        accepted_at="2024-03-01T09:01:00Z",
        old_key_expires_at="2024-03-01T09:01:00Z",
    )


def test_a_reading_from_before_our_check_wins_over_our_own_use(
    tmp_path: Path,
) -> None:
    """Our liveness check moves last_used; the earlier reading is the real one."""
    secret = fake_key(seed="prov-1")
    journal = Journal.create(tmp_path, "inc-prov-1")
    _finding(journal, secret)
    _checked(journal, secret, last_used="2024-02-10T08:00:00Z")
    _found(journal, secret, last_used=CHECK_STARTED)  # our own check, read later

    key = build_timeline(journal).keys[0]

    assert key.last_used == "2024-02-10T08:00:00Z"
    assert key.last_used_may_be_ours is False
    assert key.used_after_leak is True


def test_a_last_used_only_seen_after_our_check_is_not_called_abuse(
    tmp_path: Path,
) -> None:
    """Without an earlier reading the time is shown, marked as maybe ours."""
    secret = fake_key(seed="prov-2")
    journal = Journal.create(tmp_path, "inc-prov-2")
    _finding(journal, secret)
    _checked(journal, secret, last_used=None)
    _found(journal, secret, last_used="2024-03-01T09:00:00Z")

    timeline = build_timeline(journal)
    key = timeline.keys[0]

    assert key.last_used == "2024-03-01T09:00:00Z"
    assert key.last_used_may_be_ours is True
    assert key.used_after_leak is None
    assert timeline.summary.used_after_leak == ()
    markdown = render_markdown(timeline)
    assert "USED AFTER" not in markdown
    assert "may be our own" in markdown


def test_an_unrolled_test_key_does_not_hold_containment_open(tmp_path: Path) -> None:
    """Live keys decide containment; a test key left alone is named, not failed."""
    live, test = fake_key(seed="prov-live"), fake_key(prefix="sk_test_", seed="t")
    journal = Journal.create(tmp_path, "inc-prov-3")
    _finding(journal, live)
    _finding(journal, test, mode="test")
    _rotated(journal, live)

    timeline = build_timeline(journal)
    by_fp = {k.fingerprint: k for k in timeline.keys}

    assert timeline.summary.contained is True
    assert timeline.summary.revoked is True
    assert timeline.summary.still_exposed == ()
    assert timeline.summary.test_keys_not_rolled == (redact(test),)
    assert by_fp[fingerprint(test)].status.startswith("test mode: not rolled")
    assert any("--include-test" in s for s in timeline.summary.next_steps)
    assert not any(
        s.startswith(f"Roll {redact(test)}") for s in timeline.summary.next_steps
    )


def test_only_test_keys_say_there_was_nothing_live_to_contain(tmp_path: Path) -> None:
    test = fake_key(prefix="sk_test_", seed="only-test")
    journal = Journal.create(tmp_path, "inc-prov-4")
    _finding(journal, test, mode="test")

    summary = build_timeline(journal).summary

    assert summary.contained is True
    assert summary.detection_to_containment == "no live key to contain"


def test_a_rolled_test_key_counts_like_a_live_one(tmp_path: Path) -> None:
    """--include-test makes the test key part of containment."""
    test = fake_key(prefix="sk_test_", seed="rolled-test")
    journal = Journal.create(tmp_path, "inc-prov-5")
    _finding(journal, test, mode="test")
    _rotated(journal, test)

    timeline = build_timeline(journal)

    assert timeline.keys[0].test_not_rolled is False
    assert timeline.summary.test_keys_not_rolled == ()
    assert timeline.summary.contained_at == "2024-03-01T09:01:00Z"


def test_never_used_before_our_check_is_said_plainly(tmp_path: Path) -> None:
    """The key object listed before our check had no last_used: nobody used it."""
    secret = fake_key(seed="prov-6")
    journal = Journal.create(tmp_path, "inc-prov-6")
    _finding(journal, secret)
    _checked(journal, secret, last_used=None, key_id="ak_1")
    _found(journal, secret, last_used="2024-03-01T09:00:00Z")  # our own check

    key = build_timeline(journal).keys[0]

    assert key.last_used is None
    assert key.used_after_leak is False
    assert key.last_used_text.startswith("never")
    assert "never, as Stripe reported" in render_markdown(build_timeline(journal))


def test_a_use_seconds_before_our_check_is_still_abuse(tmp_path: Path) -> None:
    """Abuse going on while we respond: the reading taken before our check counts,
    however close to it."""
    secret = fake_key(seed="prov-7")
    journal = Journal.create(tmp_path, "inc-prov-7")
    _finding(journal, secret)
    _checked(journal, secret, last_used="2024-03-01T08:59:57Z", key_id="ak_1")
    _found(journal, secret, last_used=CHECK_STARTED)

    key = build_timeline(journal).keys[0]

    assert key.last_used == "2024-03-01T08:59:57Z"
    assert key.last_used_may_be_ours is False
    assert key.used_after_leak is True


def test_an_old_key_still_accepted_is_not_called_revoked(tmp_path: Path) -> None:
    """A rotation whose old key Stripe kept accepting leaves the key exposed."""
    secret = fake_key(seed="prov-still")
    journal = Journal.create(tmp_path, "inc-prov-still")
    _finding(journal, secret)
    _rotated(journal, secret)
    journal.append("roll", "old-key-still-accepted", fingerprint=fingerprint(secret),
                   old_key_id="ak_1", checked_until="2024-03-01T09:03:00Z")

    timeline = build_timeline(journal)
    key = timeline.keys[0]

    assert key.revoked_at is None and key.exposure.open_ended
    assert key.exposure.ends_by == "still-accepted"
    assert "still accepts" in key.status
    assert timeline.summary.revoked is False
    assert any("expire the old key" in s for s in timeline.summary.next_steps)


def test_a_use_between_our_checks_is_abuse(tmp_path: Path) -> None:
    """Nobody had used the key before our first check; someone used it minutes
    later, before the roll read it: that is use after the leak, not ours."""
    secret = fake_key(seed="prov-between")
    journal = Journal.create(tmp_path, "inc-prov-between")
    _finding(journal, secret)
    _checked(journal, secret, last_used=None, key_id="ak_1")  # 09:00:00-09:00:01
    journal.append("roll", "key-found", fingerprint=fingerprint(secret),
                   key_id="ak_1", last_used="2024-03-01T09:05:30Z")

    key = build_timeline(journal).keys[0]

    assert key.last_used == "2024-03-01T09:05:30Z"
    assert key.used_after_leak is True
    assert key.last_used_may_be_ours is False


def test_a_refusal_on_one_remote_is_not_hidden_by_another(tmp_path: Path) -> None:
    """origin refused, second accepted: the history is not pushed, and each row
    names its remote."""
    journal = Journal.create(tmp_path, "inc-two-remotes")
    secret = fake_key(seed="two-remotes")
    _finding(journal, secret)
    add = journal.append
    add("purge", "rewrite-done", repo="/r", target="/r", commits_rewritten=1)
    add("purge", "verify-done", repo="/r", clean=True)
    for remote, ok in (("origin.git", False), ("second.git", True)):
        add("purge", "push-started", repo="/r", remote=remote, refs=1)
        add("purge", "push-ref", repo="/r", ref_id="x", name="refs/heads/main",
            action="update", ok=ok, detail="done" if ok else "hook declined",
            remote=remote)
        add("purge", "push-done", repo="/r", remote=remote, refused=0 if ok else 1)

    timeline = build_timeline(journal)

    assert timeline.purge is not None
    assert timeline.purge.remotes == ("origin.git", "second.git")
    assert timeline.purge.push_refused == 1
    assert timeline.summary.pushed is False
    assert [r.remote for r in timeline.purge.pushes] == ["origin.git", "second.git"]
