"""`incident demo`: the README's first command, offline, end to end."""

from __future__ import annotations

import json
from pathlib import Path

from incident.history import scan_repository
from incident.redact import redact
from incident.sample import sample_secrets
from tests.cli.helpers import invoke


def test_demo_responds_end_to_end_and_says_where_the_report_is(tmp_path: Path) -> None:
    root = tmp_path / "demo"

    result = invoke("demo", "--workdir", str(root), exit_code=0)

    output = result.stdout + result.stderr
    [report_json] = root.glob("payments/.incident/*/report.json")
    assert f"Open the report: {report_json.with_suffix('.html')}" in result.stdout
    assert "Audit of" in result.stdout and ": go" in result.stdout
    assert scan_repository(root / "payments").clean
    assert scan_repository(root / "origin.git").clean
    report = json.loads(report_json.read_text())
    secrets = sample_secrets()
    # The sandbox's planted use of one key is the report's loudest line.
    assert report["summary"]["used_after_leak"] == [redact(secrets["removed_live"])]
    assert len(list((root / "new-keys").glob("stripe-*.key"))) == 2
    for secret in secrets.values():
        assert secret not in output
        assert secret not in report_json.read_text()


def test_demo_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")

    result = invoke("demo", "--workdir", str(tmp_path), exit_code=2)

    assert "not empty" in result.stderr
