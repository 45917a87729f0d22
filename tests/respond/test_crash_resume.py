"""Kill `incident respond` at every step boundary and inside roll and purge, then
resume: no second rotation, no second push, no key lost, and a clean result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from incident.history import scan_repository
from incident.journal import Journal
from incident.redact import fingerprint
from incident.sandbox import derive_key_id
from tests.cli.helpers import invoke
from tests.respond.conftest import World, git
from tests.respond.crash_run import CRASH_EXIT

ROOT = Path(__file__).resolve().parents[2]

CRASH_POINTS = [
    ("after", "detect/finding", 1),
    ("after", "detect/step-done", 1),
    ("after", "assess/liveness-checked", 1),
    ("after", "contain/step-started", 1),
    ("after", "roll/rotation-requested", 1),
    ("before", "roll/rotation-accepted", 1),
    ("before", "roll/delivered", 2),
    ("after", "roll/delivered", 1),
    ("after", "contain/step-done", 1),
    ("after", "purge/backup-done", 1),
    ("before", "purge/rewrite-done", 1),
    ("after", "purge/rewrite-done", 1),
    ("after", "purge/verify-done", 1),
    ("after", "eradicate/step-done", 1),
    ("before", "purge/push-ref", 1),
    ("after", "purge/push-ref", 2),
    ("after", "purge/push-done", 1),
    ("after", "push/step-done", 1),
    ("after", "record/report-written", 1),
]


def crash(world: World, when: str, target: str, nth: int) -> None:
    env = {**os.environ, **world.env(), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "tests.respond.crash_run", when, target, str(nth),
         "--", *world.respond_args()],
        env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == CRASH_EXIT, result.stderr


@pytest.mark.parametrize(("when", "target", "nth"), CRASH_POINTS,
                         ids=[f"{w}-{t}-{n}" for w, t, n in CRASH_POINTS])
def test_respond_resumes_after_a_crash(world: World, when: str, target: str,
                                       nth: int) -> None:
    crash(world, when, target, nth)
    incident = world.only_incident().name

    resumed = invoke("respond", "--resume", incident, "--incident-dir",
                     str(world.incidents), "--yes", env=world.env(), exit_code=0)

    journal = Journal.open(world.incidents, incident)
    for leaked in world.live_api_keys:
        # Exactly one rotation, and its new key is where the app reads it.
        rotations = world.sandbox.state.rotations_of(derive_key_id(leaked))
        assert len(rotations) == 1
        new = world.sandbox.state.keys[rotations[0].new_key_id].secret
        delivered = world.new_keys / f"{fingerprint(leaked)[:12]}.key"
        assert delivered.read_text().strip() == new
        assert len(journal.find("roll", "rotation-accepted",
                                fingerprint=fingerprint(leaked))) <= 1
    assert len(journal.find("purge", "push-done")) == 1
    assert scan_repository(world.repo).clean
    log = git(world.origin, "log", "--all", "-p")
    assert not any(secret in log for secret in world.secrets)
    assert (world.only_incident() / "report.md").exists()
    # The record is whole: one backup, the rewrite's real counts, every next step.
    assert len(list(world.only_incident().glob("*.bundle"))) == 1
    report = json.loads((world.only_incident() / "report.json").read_text())
    assert report["purge"]["commits_rewritten"] > 0
    assert report["purge"]["first_changed"]
    opened = {e.data["step_id"] for e in journal.find(None, "manual-step-pending")}
    assert {"reclone", "delete-backup", "notify-host"} <= opened
    text = resumed.stdout + resumed.stderr + journal.path.read_text()
    assert not any(secret in text for secret in world.secrets)
