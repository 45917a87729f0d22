"""``incident report`` through the CLI: formats, --output, errors and refusals."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from incident.detect.rules import KEY_PATTERN
from incident.errors import ExitCode
from incident.journal import Journal
from incident.redact import fingerprint, redact
from tests.cli.helpers import invoke
from tests.helpers.gitrepo import fake_key
from tests.report.conftest import Keys


def test_report_markdown_to_stdout_by_default(story: Journal, keys: Keys) -> None:
    """Without options the Markdown report goes to stdout, the status to stderr."""
    result = invoke(
        "report", "inc-test", "--incident-dir", str(story.directory.parent),
        exit_code=ExitCode.OK,
    )  # fmt: skip

    assert result.stdout.startswith("# Incident inc-test")
    assert redact(keys.api) in result.stdout
    assert "was used after it was committed" in result.stderr
    assert "Next: " in result.stderr
    assert "report-written" not in story.path.read_text()


def test_report_json_to_stdout_parses(story: Journal) -> None:
    """--format json prints the documented JSON."""
    result = invoke(
        "report", "inc-test", "--incident-dir", str(story.directory.parent),
        "--format", "json", exit_code=ExitCode.OK,
    )  # fmt: skip

    data = json.loads(result.stdout)
    assert data["incident"]["id"] == "inc-test"
    assert data["summary"]["open_manual_steps"] == 1


def test_report_html_to_a_file_is_journaled(story: Journal, tmp_path: Path) -> None:
    """-o writes the file 0600, says where on stderr, and journals report-written."""
    target = tmp_path / "out" / "incident.html"

    result = invoke(
        "report", "inc-test", "--incident-dir", str(story.directory.parent),
        "--format", "html", "-o", str(target), exit_code=ExitCode.OK,
    )  # fmt: skip

    html = target.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "https://" not in html
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert result.stdout == ""
    assert str(target) in result.stderr.replace("\n", "")
    (written,) = story.find("record", "report-written")
    assert written.data == {"path": str(target.resolve()), "format": "html"}
    assert written.actor == "Test Operator <operator@example.com>"


def test_report_accepts_the_incident_folder_path(
    story: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ID may be the path of the incident folder itself."""
    monkeypatch.chdir(story.directory.parent.parent)

    result = invoke("report", str(story.directory), exit_code=ExitCode.OK)

    assert result.stdout.startswith("# Incident inc-test")


def test_report_finds_incidents_under_dot_incident(
    story: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --incident-dir the id is looked up under ./.incident."""
    monkeypatch.chdir(story.directory.parent.parent)

    result = invoke("report", "inc-test", "-f", "json", exit_code=ExitCode.OK)

    assert json.loads(result.stdout)["incident"]["id"] == "inc-test"


def test_report_unknown_id_is_a_usage_error(tmp_path: Path) -> None:
    """An unknown id exits 2 and says how to list incidents."""
    result = invoke(
        "report", "inc-nope", "--incident-dir", str(tmp_path),
        exit_code=ExitCode.USAGE,
    )  # fmt: skip

    assert "no incident 'inc-nope'" in result.stderr
    assert f"ls {tmp_path}/" in result.stderr.replace("\n", "")


def test_report_refuses_a_journal_holding_a_key(story: Journal, tmp_path: Path) -> None:
    """A hand-edited journal line with a key: exit 3, nothing written or printed."""
    secret = fake_key(seed="tampered")
    line = {
        "time": "2024-02-01T12:00:00Z",
        "step": "detect",
        "event": "finding",
        "actor": "Mallory <m@x>",
        "data": {"fingerprint": fingerprint(secret), "redacted": secret},
    }
    with open(story.path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
    target = tmp_path / "report.md"

    for fmt in ("markdown", "json", "html"):
        result = invoke(
            "report", "inc-test", "--incident-dir", str(story.directory.parent),
            "--format", fmt, "-o", str(target), exit_code=ExitCode.REFUSED,
        )  # fmt: skip

        assert not target.exists()
        assert "refusing to write the report" in result.stderr
        assert str(story.path) in result.stderr.replace("\n", "")
        shown = result.stdout + result.stderr
        assert not KEY_PATTERN.search(shown.encode())
        assert secret not in shown
    assert not story.find("record", "report-written")
