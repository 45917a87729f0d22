"""build_timeline: keys merged by fingerprint, exposure, manual steps, containment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from incident.journal import Journal
from incident.redact import fingerprint, redact
from incident.report.clock import describe_duration, seconds_between
from incident.report.timeline import build_timeline
from tests.report.conftest import ALICE, BOB, Keys, step_id_of, write_story

NOW = "2024-02-02T00:00:00Z"


def test_timeline_merges_each_key_across_scan_roll_and_purge(
    story: Journal, keys: Keys
) -> None:
    """The rolled API key carries scan, Stripe and purge facts under one record."""
    timeline = build_timeline(story, now=NOW)

    by_fp = {k.fingerprint: k for k in timeline.keys}
    api = by_fp[fingerprint(keys.api)]
    assert len(timeline.keys) == 2
    assert api.redacted == redact(keys.api)
    assert (api.kind, api.mode) == ("secret_key", "live")
    assert api.introduced is not None
    assert api.introduced.commit == "a" * 40
    assert api.introduced.author_name == "Dana Dev"
    assert api.introduced.author_date == "2023-12-31T23:00:00Z"
    assert [(r.name, r.since) for r in api.refs] == [
        ("refs/heads/main", "2024-01-01T00:00:00Z"),
        ("refs/remotes/origin/main", "2024-01-01T02:00:00Z"),
    ]
    assert api.pushed is True
    assert api.present_at_tips == ()
    assert api.left_tips_at == "2024-01-02T01:00:00Z"
    assert api.rotation is not None
    assert api.rotation.old_key_id == "ak_old1"
    assert api.rotation.new_key_id == "ak_new2"
    assert api.rotation.new_redacted == redact(keys.new_api)
    assert api.rotation.accepted_at == "2024-02-01T10:10:00Z"
    assert api.rotation.new_key_confirmed is True
    assert api.purged is True


def test_timeline_flags_a_key_used_after_the_leak(story: Journal, keys: Keys) -> None:
    """Stripe's last_used later than the first commit is flagged on key and summary."""
    timeline = build_timeline(story, now=NOW)

    api = next(k for k in timeline.keys if k.fingerprint == fingerprint(keys.api))
    assert api.last_used == "2024-01-15T12:00:00Z"
    assert api.used_after_leak is True
    assert timeline.summary.used_after_leak == (redact(keys.api),)
    assert any(m.alert and "USED AFTER THE LEAK" in m.label for m in api.moments)
    assert "used after it was committed" in timeline.summary.next_steps[0]


def test_timeline_exposure_ends_at_the_first_observed_rejection(
    story: Journal, keys: Keys
) -> None:
    """Rejection beats the explicit expiry; the window is first commit → rejection."""
    timeline = build_timeline(story, now=NOW)

    api = next(k for k in timeline.keys if k.fingerprint == fingerprint(keys.api))
    assert api.revoked_at == "2024-02-01T10:15:30Z"
    assert api.exposure.ends_by == "rejected"
    assert api.exposure.open_ended is False
    assert api.exposure.seconds == 31 * 86400 + 10 * 3600 + 15 * 60 + 30
    assert api.exposure.text.startswith("31 d 10 h 15 min")


def test_timeline_webhook_secret_stays_exposed_until_its_step_closes(
    story: Journal, keys: Keys
) -> None:
    """The webhook secret is still at a tip, never pushed, with an open window."""
    timeline = build_timeline(story, now=NOW)

    hook = next(k for k in timeline.keys if k.fingerprint == fingerprint(keys.webhook))
    assert hook.present_at_tips == ("refs/heads/main",)
    assert hook.left_tips_at is None
    assert hook.pushed is False
    assert hook.exposure.open_ended is True
    assert hook.exposure.end is None
    assert hook.exposure.seconds == seconds_between("2024-01-03T00:00:00Z", NOW)
    assert "STILL EXPOSED" in hook.exposure.text
    assert hook.manual_steps == (step_id_of(keys),)
    assert timeline.summary.still_exposed == (redact(keys.webhook),)
    assert timeline.summary.contained is False
    assert timeline.summary.detection_to_containment == "not contained yet"


def _expiry_journal(
    tmp_path: Path, events: list[tuple[str, dict[str, str]]]
) -> Journal:
    journal = Journal.create(tmp_path, "inc-expiry")
    fp = "f" * 64
    journal.append(
        "detect",
        "finding",
        actor=ALICE,
        fingerprint=fp,
        redacted="sk_live_…wXyZ",
        kind="secret_key",
        mode="live",
        first_seen={"commit": "a" * 40, "committer_date": "2024-01-01T00:00:00Z"},
    )
    for name, data in events:
        journal.append("roll", name, actor=ALICE, fingerprint=fp, **data)
    return journal


@pytest.mark.parametrize(
    ("events", "ends_by", "end"),
    [
        (
            [
                ("old-key-expiry-scheduled", {"expires_at": "2024-01-02T06:30:00Z"}),
            ],
            "scheduled",
            "2024-01-02T06:30:00Z",
        ),
        (
            [
                ("old-key-expiry-scheduled", {"expires_at": "2024-01-09T00:00:00Z"}),
                ("old-key-expired", {"old_key_id": "ak_1"}),
            ],
            "expired",
            "2024-02-01T10:02:00Z",
        ),
        (
            [
                ("old-key-expired", {"old_key_id": "ak_1"}),
                ("old-key-rejected", {"rejected_at": "2024-01-05T00:00:00Z"}),
            ],
            "rejected",
            "2024-01-05T00:00:00Z",
        ),
        ([("already-revoked", {})], "rejected", "2024-02-01T10:01:00Z"),
    ],
)
def test_timeline_exposure_window_arithmetic(
    tmp_path: Path,
    clock: Callable[[], str],
    events: list[tuple[str, dict[str, str]]],
    ends_by: str,
    end: str,
) -> None:
    """Rejection, then explicit expiry, then scheduled expiry end the window."""
    journal = _expiry_journal(tmp_path, events)

    key = build_timeline(journal, now=NOW).keys[0]

    assert key.exposure.ends_by == ends_by
    assert key.exposure.end == end
    assert key.exposure.seconds == seconds_between("2024-01-01T00:00:00Z", end)
    assert key.exposure.open_ended is False


def test_timeline_exposure_without_revocation_is_open_ended(
    tmp_path: Path, clock: Callable[[], str]
) -> None:
    """No rejection, expiry or schedule: the window is open and says so."""
    journal = _expiry_journal(tmp_path, [("key-found", {"key_id": "ak_1"})])

    key = build_timeline(journal, now="2024-01-03T01:02:00Z").keys[0]

    assert key.exposure.open_ended is True
    assert key.exposure.seconds == 2 * 86400 + 3600 + 120
    assert key.exposure.text.endswith("open for 2 d 1 h 2 min so far")
    assert key.status == "still exposed: not revoked"


def test_timeline_closing_the_manual_step_closes_the_incident(
    tmp_path: Path, clock: Callable[[], str], keys: Keys
) -> None:
    """A later manual-step-done with the same id closes the step and contains."""
    journal = write_story(tmp_path, keys)
    journal.append(
        "contain", "manual-step-done", actor=BOB, step_id=step_id_of(keys), note="ok"
    )

    timeline = build_timeline(journal, now=NOW)

    (step,) = timeline.manual_steps
    assert not step.is_open
    assert (step.closed_by, step.note) == (BOB, "ok")
    assert timeline.summary.open_manual_steps == 0
    assert timeline.summary.contained is True
    assert timeline.incident.closed_at == step.closed_at
    assert timeline.incident.operators == (ALICE, BOB)


def test_timeline_manual_step_done_for_another_id_leaves_it_open(
    story: Journal, keys: Keys
) -> None:
    """Only a done event with the same step_id closes a pending step."""
    story.append("contain", "manual-step-done", actor=BOB, step_id="other-step")

    timeline = build_timeline(story, now=NOW)

    assert [s.step_id for s in timeline.open_steps] == [step_id_of(keys)]
    assert timeline.incident.closed_at is None


def test_timeline_detection_to_containment(
    tmp_path: Path, clock: Callable[[], str], keys: Keys
) -> None:
    """From detect scan-done to the last key contained (rotation or manual roll)."""
    journal = write_story(tmp_path, keys)
    journal.append("contain", "manual-step-done", actor=BOB, step_id=step_id_of(keys))
    events = journal.events()
    scan_done = next(e.time for e in events if e.event == "scan-done")
    step_done = events[-1].time

    summary = build_timeline(journal, now=NOW).summary

    assert summary.detected_at == "2024-02-01T10:04:00Z" == scan_done[:19] + "Z"
    assert summary.contained_at == step_done[:19] + "Z"
    assert summary.detection_to_containment_seconds == seconds_between(
        scan_done, step_done
    )
    assert summary.detection_to_containment == describe_duration(
        summary.detection_to_containment_seconds
    )


def test_timeline_actions_keep_every_event_in_order(story: Journal) -> None:
    """Every journal event becomes an action, unknown ones with a generic sentence."""
    story.append("notify-host", "ticket-filed", actor=BOB, ticket="SUP-1")

    timeline = build_timeline(story, now=NOW)

    events = story.events()
    assert [(a.step, a.event) for a in timeline.actions] == [
        (e.step, e.event) for e in events
    ]
    assert all(a.description for a in timeline.actions)
    assert timeline.actions[-1].actor == BOB
    assert timeline.actions[-1].description == (
        "notify-host: ticket filed (no description)."
    )
    accepted = next(a for a in timeline.actions if a.event == "rotation-accepted")
    assert "ak_new2" in accepted.description


def test_timeline_purge_reads_the_commit_map_when_present(
    tmp_path: Path, clock: Callable[[], str], keys: Keys
) -> None:
    """Old → new ids of the first changed commits come from the journaled map."""
    commit_map = tmp_path / "commit-map"
    commit_map.write_text(f"old new\n{'d' * 40} {'1' * 40}\n{'9' * 40} {'9' * 40}\n")
    journal = write_story(tmp_path / ".incident", keys, commit_map=commit_map)

    purge = build_timeline(journal, now=NOW).purge

    assert purge is not None
    assert purge.first_changed == ("d" * 40, "e" * 40)
    assert purge.new_ids == {"d" * 40: "1" * 40}
    assert (purge.commits_rewritten, purge.clean, purge.push_refused) == (7, True, 0)
    assert [p.name for p in purge.pushes] == ["refs/heads/main", "refs/tags/v1"]
    assert purge.backup == "/srv/backup.bundle"


def test_timeline_of_an_empty_journal(tmp_path: Path) -> None:
    """A journal with no event still builds, with nothing contained."""
    journal = Journal.create(tmp_path, "inc-empty")

    timeline = build_timeline(journal, now=NOW)

    assert timeline.keys == ()
    assert timeline.purge is None
    assert timeline.summary.contained is False
    assert timeline.summary.detection_to_containment == "no key recorded"
