"""How the remote's answer to one push is explained."""

from __future__ import annotations

from pathlib import Path

import pytest

from incident.rewrite.push import PushStep, _outcome, format_command
from tests.helpers.gitrepo import fake_key

STEP = PushStep("refs/heads/main", "update", "b" * 40, "a" * 40, "refs/heads/main")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (" ! [remote rejected] main -> main (pre-receive hook declined)", "protected"),
        ("remote: GH006: Protected branch update failed", "protected"),
        (" ! [rejected] main -> main (stale info)", "moved since it was fetched"),
        (" ! [remote rejected] x (deny updating a hidden ref)", "hosting service"),
        (
            "fatal: unable to access 'https://x.test/': Could not resolve host",
            "failed: ",
        ),
    ],
)
def test_push_outcome_explains_refusals(output: str, expected: str) -> None:
    """Each refusal the remote can give is turned into a sentence with a next step."""
    outcome = _outcome(STEP, 1, output)

    assert not outcome.ok
    assert expected in outcome.detail


def test_push_outcome_never_shows_a_key_in_a_ref_name() -> None:
    """A ref named with a key is shown redacted in outcomes and commands."""
    key = fake_key(seed="push")
    step = PushStep(
        "refs/heads/fix/sk_live_…x", "delete", None, "a" * 40, f"refs/heads/fix/{key}"
    )

    outcome = _outcome(step, 1, f"error: failed to push refs/heads/fix/{key}")
    command = format_command(Path("/r"), "origin", step)

    assert key not in outcome.detail and key not in command
    assert "use --push" in command
