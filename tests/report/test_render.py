"""Renderers: Markdown sections, self-contained HTML, JSON shape, the secret guard."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from incident.detect.rules import KEY_PATTERN
from incident.errors import RefusedError
from incident.journal import Journal
from incident.redact import fingerprint, redact
from incident.report.render import (
    ReportFormat,
    defang,
    ensure_no_secret,
    render_html,
    render_json,
    render_markdown,
    render_timeline,
)
from incident.report.timeline import FORMAT_VERSION, build_timeline
from tests.helpers.gitrepo import fake_key
from tests.report.conftest import ALICE, Keys

NOW = "2024-02-02T00:00:00Z"

# The documented JSON format (helper-notes/README-report.md); changing it is a
# format_version bump.
TOP_LEVEL = {
    "incident", "keys", "purge", "actions", "manual_steps", "summary",
    "generated_at", "format_version",
}  # fmt: skip
INCIDENT = {"id", "repo", "directory", "operators", "opened_at", "closed_at"}
KEY = {
    "fingerprint", "redacted", "kind", "mode", "severity", "introduced", "refs",
    "present_at_tips", "left_tips", "left_tips_at", "pushed", "liveness",
    "old_key_id", "last_used", "last_used_may_be_ours", "last_used_text",
    "used_after_leak",
    "rotation", "revoked_at", "exposure", "contained_at", "purged", "roll_error",
    "manual_steps", "status", "moments", "test_not_rolled",
}  # fmt: skip
EXPOSURE = {"start", "end", "seconds", "open_ended", "ends_by", "text"}
ROTATION = {
    "old_key_id", "new_key_id", "new_redacted", "new_fingerprint", "accepted_at",
    "delivered_to", "delivery_failed", "emergency_file", "new_key_confirmed",
}  # fmt: skip
PURGE = {
    "repo", "target", "backup", "backup_done_at", "rewrite_started_at",
    "rewrite_done_at", "commits_rewritten", "refs_changed", "removed_files",
    "first_changed", "commit_map", "commit_changes", "verify_done_at", "clean",
    "remnants", "remote", "pushes", "push_done_at", "push_refused", "remotes",
}  # fmt: skip
ACTION = {"time", "actor", "step", "event", "description"}
MANUAL_STEP = {
    "step_id", "title", "step", "opened_at", "opened_by", "instructions",
    "fingerprint", "closed_at", "closed_by", "note", "open",
}  # fmt: skip
SUMMARY = {
    "detected_at", "contained_at", "detection_to_containment_seconds",
    "detection_to_containment", "contained", "revoked", "eradicated", "verified",
    "pushed", "open_manual_steps", "used_after_leak", "still_exposed",
    "test_keys_not_rolled", "history_complete", "push_needed",
    "respond_status", "next_steps",
}  # fmt: skip


def test_render_json_round_trips_with_the_documented_keys(story: Journal) -> None:
    """The JSON parses back to to_dict() and holds exactly the documented fields."""
    timeline = build_timeline(story, now=NOW)

    data = json.loads(render_json(timeline))

    assert data == json.loads(json.dumps(timeline.to_dict()))
    assert set(data) == TOP_LEVEL
    assert set(data["incident"]) == INCIDENT
    assert data["format_version"] == FORMAT_VERSION
    assert data["generated_at"] == NOW
    for key in data["keys"]:
        assert set(key) == KEY
        assert set(key["exposure"]) == EXPOSURE
    assert set(next(k for k in data["keys"] if k["rotation"])["rotation"]) == ROTATION
    assert set(data["purge"]) == PURGE
    assert all(set(a) == ACTION for a in data["actions"])
    assert all(set(s) == MANUAL_STEP for s in data["manual_steps"])
    assert set(data["summary"]) == SUMMARY


def test_render_markdown_has_every_section(story: Journal, keys: Keys) -> None:
    """Headings, the key table, per-key timelines, the checklist and the actions."""
    text = render_markdown(build_timeline(story, now=NOW))

    for heading in (
        "# Incident inc-test",
        "## Status",
        "## Keys",
        f"### `{redact(keys.api)}`",
        "## History rewrite",
        "## Manual steps",
        "## Actions",
    ):
        assert heading in text
    assert "| Key | Kind | Mode | Fingerprint |" in text
    assert "WAS USED AFTER IT WAS COMMITTED" in text
    assert "- [ ] **Roll the webhook signing secret" in text
    assert "31 d 10 h 15 min" in text
    assert f"`sha256:{fingerprint(keys.api)}`" in text
    assert "Alice Ops \\<alice@example.com\\>" in text


def test_render_html_is_self_contained(story: Journal) -> None:
    """No script, stylesheet link, font, image or outside URL: inline CSS only."""
    html = render_html(build_timeline(story, now=NOW))

    assert html.startswith("<!DOCTYPE html>")
    assert "<style>" in html
    for forbidden in (
        "http://", "https://", "src=", "<script", "<link", "@import", "url(",
        "@font-face", "<iframe", "<img",
    ):  # fmt: skip
        assert forbidden not in html.lower(), forbidden
    assert "https[:]//dashboard.stripe.com/webhooks" in html
    assert 'class="timeline"' in html


def test_render_html_escapes_user_text(
    tmp_path: Path, clock: Callable[[], str]
) -> None:
    """An author name with markup is shown as text, never as HTML."""
    journal = Journal.create(tmp_path, "inc-xss")
    journal.append(
        "detect",
        "finding",
        actor="<b>Mallory</b> <m@x>",
        fingerprint="a" * 64,
        redacted="sk_live_…wXyZ",
        first_seen={
            "commit": "a" * 40,
            "author_name": '<script>alert("x")</script>',
            "committer_date": "2024-01-01T00:00:00Z",
        },
    )

    html = render_html(build_timeline(journal, now=NOW))

    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert "<b>Mallory" not in html


def test_render_from_fingerprints_only_holds_no_key_shaped_text(
    tmp_path: Path, clock: Callable[[], str]
) -> None:
    """Events that name keys only by fingerprint give reports with no key in them."""
    journal = Journal.create(tmp_path, "inc-fp")
    fp = fingerprint(fake_key(seed="fp-only"))
    journal.append("detect", "finding", actor=ALICE, fingerprint=fp, kind="secret_key")
    journal.append("roll", "rotation-accepted", actor=ALICE, fingerprint=fp,
                   old_key_id="ak_1", new_key_id="ak_2")  # fmt: skip
    timeline = build_timeline(journal, now=NOW)

    for fmt in ReportFormat:
        text = render_timeline(timeline, fmt)

        assert not KEY_PATTERN.search(text.encode())
        assert f"sha256:{fp[:12]}" in text


def test_story_journal_and_reports_hold_no_secret_value(
    story: Journal, keys: Keys
) -> None:
    """Neither the journal nor any report holds a secret value, or anything like it."""
    timeline = build_timeline(story, now=NOW)
    texts = [story.path.read_text()] + [
        render_timeline(timeline, f) for f in ReportFormat
    ]

    for text in texts:
        for secret in keys.values:
            assert secret not in text
            assert secret[8:] not in text
        assert not KEY_PATTERN.search(text.encode())
        assert not re.search(r"(sk|rk)_(live|test)_[0-9A-Za-z]{8}", text)


def test_ensure_no_secret_refuses_key_shaped_text() -> None:
    """A key anywhere in the rendered text makes the renderer refuse."""
    secret = fake_key(seed="guard")

    with pytest.raises(RefusedError) as caught:
        ensure_no_secret(f"| key | {secret} |")

    assert secret not in caught.value.message
    assert secret not in (caught.value.hint or "")
    shown = f"| key | {redact(secret)} |"
    assert ensure_no_secret(shown) == shown


def test_render_refuses_a_key_forced_into_a_field(story: Journal) -> None:
    """A key-shaped value slipped into the timeline never reaches any format."""
    timeline = build_timeline(story, now=NOW)
    leaked = replace(timeline.keys[0], status=fake_key(seed="forced"))
    forced = replace(timeline, keys=(leaked, *timeline.keys[1:]))

    for fmt in ReportFormat:
        with pytest.raises(RefusedError):
            render_timeline(forced, fmt)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see https://dashboard.stripe.com/x", "see https[:]//dashboard.stripe.com/x"),
        ("http://a.b and ftp://c", "http[:]//a.b and ftp[:]//c"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("no url", "no url"),
    ],
)
def test_defang_breaks_urls(text: str, expected: str) -> None:
    """URL schemes are broken so the HTML names no outside address as a link."""
    assert defang(text) == expected
