"""``incident demo``: the whole response on the bundled sample, against the sandbox."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from incident.cli import finish
from incident.cli.console import err, out
from incident.cli.respond import ConsoleUi, summary
from incident.errors import ExitCode, UsageError
from incident.redact import redact
from incident.report.files import write_reports
from incident.respond import Responder, RespondOptions, open_manual_steps
from incident.sample import apply_environment_fix, build_sample_repo, publish_sample


@click.command("demo")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Build everything in this (new or empty) folder [default: a new "
              "temporary folder, kept so the report can be read].")
def demo_cmd(workdir: Path | None) -> None:
    """Run `incident respond --yes` on the sample repository, offline.

    Builds the sample payments repository (four planted fake keys, pushed to a local
    bare "origin"), starts the offline Stripe sandbox seeded with its keys, responds
    end to end, makes the reporting client read its key from the environment, and
    prints where the report is. Nothing leaves this machine.
    """
    from incident.sandbox import start_sandbox

    root = workdir or Path(tempfile.mkdtemp(prefix="incident-demo-"))
    if root.exists() and any(root.iterdir()):
        raise UsageError(f"{root} is not empty", "Give a new folder to --workdir.")
    root.mkdir(parents=True, exist_ok=True)
    err.print(f"Demo folder: {escape(str(root))}")
    sample = build_sample_repo(root / "payments")
    publish_sample(sample.path, root / "origin.git")
    err.print("Built the sample repository (4 fake keys) and pushed it to a local "
              f"bare remote {escape(str(root / 'origin.git'))}.")

    api_keys = [v for v in sample.secrets.values() if not v.startswith("whsec_")]
    with start_sandbox(api_keys) as sandbox:
        err.print(f"Offline Stripe sandbox at {escape(sandbox.url)}, seeded with "
                  f"{len(api_keys)} keys.")
        _play_the_attacker(sandbox, sample.secrets["removed_live"])
        options = RespondOptions(
            api_key=sandbox.add_operator_key("live"),
            api_base=sandbox.url,
            deliver=(f"file:{root / 'new-keys'}/stripe-{{fingerprint}}.key",),
            roll_tuning={"confirm_timeout": 30.0},
        )
        responder = Responder.start(sample.path, None, options, ConsoleUi(),
                                    root=None, yes=True)
        journal = responder.journal
        err.print(f"Incident [bold]{escape(journal.incident_id)}[/]: journal "
                  f"{escape(str(journal.path))}")
        result = responder.run()
        rotations = sum(len(sandbox.state.rotations_of(key.id))
                        for key in sandbox.state.keys.values())

    fix = apply_environment_fix(sample.path)
    _git(sample.path, "push", "-q", "origin", "main")
    journal.append("demo", "code-fixed", commit=fix,
                   summary="the reporting client reads STRIPE_SECRET_KEY from the "
                   "environment (pushed)")
    # What a hosting service does when asked: drop the unreachable old objects.
    bare = root / "origin.git"
    _git(bare, "reflog", "expire", "--expire=now", "--all")
    _git(bare, "gc", "-q", "--prune=now")
    journal.append("purge-old-objects-on-the-remote", "manual-step-done",
                   step_id="purge-old-objects-on-the-remote",
                   note="demo: the local bare remote was garbage-collected")
    result.open_steps = open_manual_steps(journal)
    result.reports = write_reports(journal, ["markdown", "html", "json"])
    summary(result)

    from incident.audit import run_audit
    from incident.history import scan_repository

    remote_scan = scan_repository(bare)
    verdict = run_audit(sample.path).verdict
    out.print(f"The sandbox rotated {rotations} key(s), each once; the new keys are in "
              f"{escape(str(root / 'new-keys'))} (0600).")
    out.print(f"Remote {escape(str(bare))}: "
              + ("clean" if remote_scan.clean else
                 f"{len(remote_scan.findings)} secret(s) still stored"))
    out.print(f"Audit of {escape(str(sample.path))}: {verdict}")
    out.print(f"Open the report: {escape(str(result.reports[1]))}")
    finish(ExitCode.OK if remote_scan.clean and str(verdict) == "go"
           else ExitCode.FINDINGS)


def _play_the_attacker(sandbox: Any, secret: str) -> None:
    """Make Stripe remember a use of one leaked key a day ago, after its commit.

    That is the line the report exists for ("used after the leak"), so the demo
    shows it rather than a story where nobody noticed the key.
    """
    from incident.sandbox import derive_key_id

    key = sandbox.state.keys[derive_key_id(secret)]
    with sandbox.state.lock:
        key.last_used = time.time() - 86_400
    err.print(f"The sandbox plays the attacker: Stripe records a use of "
              f"{escape(redact(secret))} one day ago.")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
