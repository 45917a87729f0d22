"""``incident scan`` end to end: formats, exit codes, and no secret in any output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import invoke
from tests.helpers.gitrepo import GitRepo, fake_key

KEY = fake_key(seed="cli")
TEST_KEY = fake_key("rk_" + "test_", seed="cli-test")


@pytest.fixture
def leaky(repo: GitRepo) -> GitRepo:
    repo.commit({"app.py": f"stripe.api_key = '{KEY}'\n"}, f"add {TEST_KEY}")
    repo.commit({"app.py": "stripe.api_key = os.environ['STRIPE_API_KEY']\n"}, "fix")
    return repo


def run_main(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real entry point in a subprocess, as a user's shell would."""
    return subprocess.run(
        [sys.executable, "-m", "incident", *args],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "markdown"])
def test_scan_cmd_never_prints_a_secret(
    leaky: GitRepo, fmt: str, tmp_path: Path
) -> None:
    """No output format, stdout, stderr or file, holds a full secret value."""
    out_file = tmp_path / f"report.{fmt}"

    to_stdout = run_main("scan", str(leaky.path), "--format", fmt)
    to_file = run_main(
        "--debug",
        "scan",
        str(leaky.path),
        "--format",
        fmt,
        "-o",
        str(out_file),
        "--show-ignored",
    )

    assert to_stdout.returncode == 1
    for text in (
        to_stdout.stdout,
        to_stdout.stderr,
        to_file.stdout,
        to_file.stderr,
        out_file.read_text(),
    ):
        assert KEY not in text and TEST_KEY not in text
    assert KEY[-4:] in to_stdout.stdout


def test_scan_cmd_json_documented_fields(leaky: GitRepo) -> None:
    """The JSON has findings with kind, mode, fingerprint, redacted, locations..."""
    result = invoke("scan", str(leaky.path), "--format", "json", exit_code=1)

    data = json.loads(result.stdout)
    assert data["complete"] is True and data["clean"] is False
    kinds = {(f["kind"], f["mode"]) for f in data["findings"]}
    assert kinds == {("secret_key", "live"), ("restricted_key", "test")}
    for finding in data["findings"]:
        assert {
            "kind",
            "mode",
            "fingerprint",
            "redacted",
            "locations",
            "refs",
            "first_seen",
            "reachable",
            "present_at_tips",
        } <= finding.keys()
        assert len(finding["fingerprint"]) == 64


def test_scan_cmd_sarif_shape(leaky: GitRepo) -> None:
    """SARIF 2.1.0 with the fields GitHub code scanning requires."""
    result = invoke("scan", str(leaky.path), "--format", "sarif", exit_code=1)

    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0"
    [run] = sarif["runs"]
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert len(run["results"]) == 2
    for res in run["results"]:
        assert res["ruleId"] in rule_ids
        assert rule_ids[res["ruleIndex"]] == res["ruleId"]
        assert res["message"]["text"]
        [location] = res["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"]
        assert physical["region"]["startLine"] >= 1
        assert len(res["partialFingerprints"]["stripeSecretSha256/v1"]) == 64
    for rule in run["tool"]["driver"]["rules"]:
        assert float(rule["properties"]["security-severity"]) > 0


def test_scan_cmd_markdown_and_text(leaky: GitRepo) -> None:
    """Markdown for tickets, text when piped: both name the next step."""
    markdown = invoke("scan", str(leaky.path), "--format", "markdown", exit_code=1)
    text = invoke("scan", str(leaky.path), exit_code=1)

    assert "## Secrets" in markdown.stdout
    assert "incident roll" in markdown.stdout
    assert text.stdout.startswith("incident scan of ")
    assert "NEXT STEPS" in text.stdout


def test_scan_cmd_clean_repository_exits_0(repo: GitRepo) -> None:
    """Nothing found in a complete history: exit 0."""
    repo.commit({"a.py": "print('hi')\n"}, "init")

    result = invoke("scan", str(repo.path), exit_code=0)

    assert "no Stripe secret found" in result.stdout


def test_scan_cmd_incomplete_clean_exits_1(repo: GitRepo, tmp_path: Path) -> None:
    """A shallow clone with nothing found is not clean: exit 1, in every format."""
    for n in range(3):
        repo.commit({"f": f"{n}\n"}, f"c{n}")
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth=1", f"file://{repo.path}", str(shallow)],
        check=True,
    )

    text = invoke("scan", str(shallow), exit_code=1)
    data = json.loads(invoke("scan", str(shallow), "-f", "json", exit_code=1).stdout)
    sarif = json.loads(invoke("scan", str(shallow), "-f", "sarif", exit_code=1).stdout)
    markdown = invoke("scan", str(shallow), "-f", "markdown", exit_code=1).stdout

    assert "INCOMPLETE" in text.stdout
    assert data["complete"] is False and data["clean"] is False
    assert sarif["runs"][0]["invocations"][0]["executionSuccessful"] is False
    assert "**Complete:** **no**" in markdown


def test_scan_cmd_not_a_repository_exits_2(tmp_path: Path) -> None:
    """A path without a repository: exit 2 and a one-line reason on stderr."""
    result = run_main("scan", str(tmp_path))

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: {tmp_path} is not a git repository")


def test_scan_cmd_bad_format_exits_2(repo: GitRepo) -> None:
    """A bad option is a usage error."""
    result = run_main("scan", str(repo.path), "--format", "xml")

    assert result.returncode == 2
    assert "xml" in result.stderr
