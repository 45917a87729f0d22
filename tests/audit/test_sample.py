"""The bundled sample repository: no-go as built, go once purged and fixed."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

from incident.audit import Status, Verdict, run_audit
from incident.sample import apply_environment_fix, build_sample_repo
from tests.guard.cli_helpers import assert_no_secret, invoke


def purge_with_filter_repo(repo: Path, secrets: list[str], work: Path) -> None:
    """Stand-in for `incident purge`: replace each secret and its base64 form."""
    rules = work / "replace.txt"
    lines = []
    for secret in secrets:
        lines.append(f"{secret}==>REMOVED")
        lines.append(f"{base64.b64encode(secret.encode()).decode()}==>REMOVED")
    rules.write_text("\n".join(lines) + "\n")
    rules.chmod(0o600)
    subprocess.run(["git", "-C", str(repo), "filter-repo", "--force", "--quiet",
                    "--replace-text", str(rules)], check=True, capture_output=True)
    rules.unlink()


def test_sample_repository_no_go_then_go(tmp_path: Path) -> None:
    """As built: no-go naming the hard-coded client; purged and fixed: go."""
    sample = build_sample_repo(tmp_path / "sample")

    before = invoke(["audit", str(sample.path)], expected=1)
    checks = {c.id: c for c in run_audit(sample.path).checks}
    apply_environment_fix(sample.path)
    purge_with_filter_repo(sample.path, list(sample.secrets.values()), tmp_path)
    after = run_audit(sample.path)

    assert checks["history"].status is Status.FAIL
    assert len([i for i in checks["history"].items if i.status is Status.FAIL]) == 4
    assert checks["hardcoded-keys"].items[0].where.startswith(
        "reporting_service/stripe_client.py:")
    assert checks["stripe-clients"].status is Status.FAIL
    assert_no_secret(before, *sample.secrets.values())
    assert after.verdict is Verdict.GO, [c.to_dict() for c in after.checks
                                         if c.status is not Status.PASS]
    clients = next(c for c in after.checks if c.id == "stripe-clients")
    assert clients.status is Status.PASS
