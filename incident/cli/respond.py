"""``incident respond`` and ``incident step``: run the playbook, close manual steps."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import click
from rich.markup import escape

from incident.cli import finish, set_resume_hint
from incident.cli.console import err, out, progress_bar
from incident.cli.options import (
    F,
    dry_run_option,
    refuse_credentials_in_remote,
    yes_option,
)
from incident.cli.roll import API_BASE_ENV
from incident.delivery import anchor_target
from incident.errors import ExitCode, UsageError
from incident.journal import DEFAULT_ROOT, Journal, operator_identity
from incident.keys import MAX_GRACE_MINUTES
from incident.lock import repository_lock
from incident.playbook import Step, load_playbook
from incident.respond import (
    Responder,
    RespondOptions,
    RespondResult,
    open_manual_steps,
)

_MARK = {"done": "[green]✓[/]", "skipped": "[dim]–[/]", "failed": "[red]✗[/]"}


class ConsoleUi:
    """Progress and questions on stderr; the run's summary goes to stdout."""

    def step_started(self, step: Step, number: int, total: int) -> None:
        err.print(f"[dim]step {number}/{total}[/] [bold]{escape(step.phase)}[/] · "
                  f"{escape(step.title)} …")

    def step_finished(self, step: Step, status: str, summary: str) -> None:
        mark = _MARK.get(status, "·")
        err.print(f"  {mark} {escape(step.id)}: {escape(summary)}")

    def manual_step(self, step_id: str, title: str, instructions: list[str]) -> None:
        err.print(f"  [yellow]☐ manual[/] {escape(step_id)}: {escape(title)} "
                  "(stays open until: incident step done "
                  f"{escape(step_id)})")
        for line in instructions:
            err.print(f"      - {escape(line)}")

    def confirm(self, question: str) -> bool:
        return click.confirm(question, default=False, err=True)

    def note(self, text: str) -> None:
        err.print(f"    {escape(text)}")

    def progress(
        self, description: str
    ) -> AbstractContextManager[Callable[[int, int], None] | None]:
        return progress_bar(description)


@click.command("respond")
@click.argument("repo", type=click.Path(file_okay=False, path_type=Path),
                default=".")
@click.option("--resume", "resume_id", metavar="ID",
              help="Continue incident ID where it stopped (after a crash, Ctrl-C, a "
              "failed or declined step). Uses the options it started with; a new "
              "--deliver replaces its delivery targets.")
@click.option("--playbook", type=click.Path(dir_okay=False, path_type=Path),
              help="Run this playbook instead of playbooks/stripe-key-leak.yaml.")
@click.option("--api-key", envvar="STRIPE_API_KEY", default=None, show_envvar=True,
              metavar="KEY", help="Key that authenticates the rotation (read from "
              "STRIPE_API_KEY; prefer the variable).")
@click.option("--use-leaked-key", is_flag=True,
              help="Authenticate with each leaked key itself (no STRIPE_API_KEY).")
@click.option("--api-base", envvar=API_BASE_ENV, default=None, metavar="URL",
              show_envvar=True, help="Send every Stripe call to URL (the sandbox).")
@click.option("--deliver", multiple=True, metavar="TARGET",
              help="Where each new key goes (repeatable): file:PATH, "
              "env-file:PATH:VAR, aws-secretsmanager:ID, exec:COMMAND. With several "
              "keys, put {fingerprint} or {index} in it.")
@click.option("--grace", type=click.IntRange(0, MAX_GRACE_MINUTES), default=None,
              metavar="MINUTES", help="Keep the old keys working this long "
              "[default: the playbook's, 0].")
@click.option("--include-test", is_flag=True, default=None,
              help="Also roll test-mode keys (they are always purged).")
@click.option("--copy", "copy_mirror", is_flag=True,
              help="Rewrite a fresh mirror and push from it; leave REPO untouched "
              "(default: rewrite REPO in place, after a backup).")
@click.option("--push/--no-push", default=True, show_default=True,
              help="Force-push the clean history (with a lease), or only print the "
              "commands.")
@click.option("--remote", default="origin", show_default=True,
              help="Remote name or URL to push to.")
@click.option("--fetch/--no-fetch", default=True, show_default=True,
              help="Fetch every remote before the scan, so branches others pushed "
              "are scanned (and purged) too.")
@click.option("--incident-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder that holds incidents [default: REPO/.incident].")
@dry_run_option
@yes_option
def respond_cmd(repo: Path, resume_id: str | None, playbook: Path | None,
                api_key: str | None, use_leaked_key: bool, api_base: str | None,
                deliver: tuple[str, ...], grace: int | None,
                include_test: bool | None, copy_mirror: bool, push: bool,
                remote: str, fetch: bool, incident_dir: Path | None,
                dry_run: bool, yes: bool) -> None:
    """Respond to leaked Stripe keys in REPO: the whole playbook, step by step.

    detect (scan the whole history) -> assess (which keys still work) -> contain
    (rotate, deliver the new keys) -> eradicate (rewrite history, verify clean) ->
    recover (push; manual steps) -> record (the report). Irreversible steps ask
    first (--yes answers for you). Everything is journaled in REPO/.incident/ID/;
    after a crash or Ctrl-C, `incident respond --resume ID` continues without
    rotating or pushing twice. Manual steps stay open until
    `incident step done STEP --incident ID`.
    """
    refuse_credentials_in_remote(remote)
    ui = ConsoleUi()
    if dry_run:
        finish(_plan(repo, playbook, resume_id, include_test,
                     has_credential=bool(api_key) or use_leaked_key))
        return
    if resume_id:
        root = incident_dir or _root_for(repo)
        responder = Responder.resume(
            resume_id, ui, root=root, api_key=api_key, yes=yes,
            deliver=tuple(anchor_target(d, Path.cwd()) for d in deliver))
        err.print(f"Resuming incident [bold]{escape(responder.journal.incident_id)}"
                  "[/] with the options it started with.")
    else:
        options = RespondOptions(
            api_key=api_key, use_leaked_key=use_leaked_key, api_base=api_base,
            deliver=tuple(anchor_target(d, Path.cwd()) for d in deliver),
            grace=grace, include_test=include_test,
            in_place=False if copy_mirror else None, push=push, remote=remote,
            fetch=fetch)
        # Locked before the incident exists: a refused second run must not leave
        # an empty incident behind with a resume hint that leads nowhere.
        with repository_lock(repo, "incident respond"):
            responder = Responder.start(repo, playbook, options, ui,
                                        root=incident_dir, yes=yes)
            err.print(f"Incident [bold]{escape(responder.journal.incident_id)}[/]: "
                      f"journal {escape(str(responder.journal.path))}")
            err.print("  If this stops, continue with: "
                      + escape(responder.resume_command()))
            set_resume_hint(responder.resume_command())
            result = responder.run()
        summary(result)
        if result.status in ("incomplete", "live-keys-not-rolled"):
            finish(ExitCode.FINDINGS)
        return
    set_resume_hint(responder.resume_command())
    result = responder.run()
    summary(result)
    if result.status in ("incomplete", "live-keys-not-rolled"):
        finish(ExitCode.FINDINGS)


def _root_for(repo: Path) -> Path:
    """Where incidents live when --incident-dir is not given: REPO/.incident."""
    candidate = repo / DEFAULT_ROOT
    return candidate if candidate.is_dir() else Path.cwd() / DEFAULT_ROOT


def _plan(repo: Path, playbook_path: Path | None, resume_id: str | None,
          include_test: bool | None, has_credential: bool = True) -> int:
    """Print the playbook and, from a read-only scan, what each step would touch."""
    from incident.history import scan_repository

    playbook = load_playbook(playbook_path)
    report = scan_repository(repo)
    secrets = [f for f in report.findings if f.kind.is_secret]
    live = [f for f in secrets if str(f.mode) == "live"]
    out.print(f"Plan: {escape(playbook.title)} (playbook {escape(playbook.name)} "
              f"{escape(playbook.version)}, {escape(playbook.source)})")
    out.print(f"Found {len(secrets)} secret(s) in {escape(str(repo))}, "
              f"{len(live)} live:")
    for finding in secrets:
        first = finding.first_seen.sha[:12] if finding.first_seen else "-"
        out.print(f"  {escape(finding.redacted)}  {finding.kind} {finding.mode}  "
                  f"first commit {first}  refs {len(finding.refs)}")
    for number, step in enumerate(playbook.steps, 1):
        flags = []
        if step.confirm:
            flags.append("asks first")
        if step.irreversible:
            flags.append("irreversible")
        if step.manual:
            flags.append("manual")
        extra = f"  [{', '.join(flags)}]" if flags else ""
        out.print(f"{number}. {step.phase:<9} {escape(step.id)}: "
                  f"{escape(step.title)}{escape(extra)}")
    rolls = any(step.action == "roll" for step in playbook.steps)
    if live and rolls and not has_credential:
        out.print("No Stripe credential: the contain step would stop. export "
                  "STRIPE_API_KEY=<a secret key of the same account> (or pass "
                  "--use-leaked-key) before running it.")
    out.print("Dry run: nothing was changed and no journal was written. Run without "
              "--dry-run to respond" + (" (or --resume to continue)." if resume_id
                                        else "."))
    if report.incomplete:
        out.print("INCOMPLETE: part of the history could not be read ("
                  + ", ".join(sorted({u.kind for u in report.unscanned
                                      if u.makes_incomplete}))
                  + "); keys there would be neither rolled nor purged. See: "
                  f"incident scan {escape(str(repo))}")
    return ExitCode.OK if not secrets and not report.incomplete else ExitCode.FINDINGS


def summary(result: RespondResult) -> None:
    journal = result.journal
    out.print(f"Incident {escape(result.incident_id)}: {result.status}")
    if result.status == "live-keys-not-rolled":
        started = journal.find("respond", "started")
        repo = str(started[0].data.get("repo")) if started else "REPO"
        out.print("  Live keys that may still work were not rotated by this playbook: "
                  "roll them now: "
                  + escape(journal.command("roll", shlex.quote(repo))))
    if result.status == "incomplete":
        out.print("  Part of the history could not be read, or a remote could not be "
                  "fetched: keys there were neither rolled nor purged. The detect "
                  "step above says what; fix it, then run incident respond again.")
    for path in result.reports:
        out.print(f"  Report: {escape(str(path))}")
    files = sorted(p.name for p in journal.directory.iterdir()
                   if p.name.endswith((".bundle", ".txt", ".pem")))
    if files:
        out.print(f"  Files in {escape(str(journal.directory))}: "
                  + ", ".join(escape(f) for f in files)
                  + "  (the .bundle backup and new-key files hold secrets)")
    if result.open_steps:
        out.print(f"Open manual steps ({len(result.open_steps)}); close each when "
                  "done:")
        for step in result.open_steps:
            out.print("  " + escape(journal.command("step", "done", step["step_id"]))
                      + f"   # {escape(step.get('title', ''))}")
    out.print("Rebuild the report any time: incident report "
              f"{escape(result.incident_id)} --incident-dir "
              f"{escape(str(journal.directory.parent))}")


@click.group("step")
def step_group() -> None:
    """List and close the manual steps of an incident."""


def _incident_option(func: F) -> F:
    func = click.option(
        "--incident-dir", type=click.Path(file_okay=False, path_type=Path),
        help="Folder that holds incidents [default: ./.incident].")(func)
    return click.option(
        "--incident", "incident_id", metavar="ID",
        help="The incident [default: the only one in the folder].")(func)


def _open(incident_dir: Path | None, incident_id: str | None) -> Journal:
    root = incident_dir or Path.cwd() / DEFAULT_ROOT
    if incident_id is None:
        names = sorted(p.parent.name for p in root.glob("*/journal.jsonl"))
        if len(names) != 1:
            raise UsageError(
                f"{len(names)} incidents in {root}; say which with --incident ID",
                "Incidents: " + (", ".join(names) or "none (use --incident-dir)"))
        incident_id = names[0]
    journal = Journal.open(root, incident_id)
    started = journal.find("respond", "started")
    journal.actor = operator_identity(
        Path(started[0].data["repo"]) if started else Path.cwd())
    return journal


def _refuse_while_secrets_remain(journal: Journal, step_id: str) -> None:
    """The steps about files that hold keys close only once the files are gone."""
    if step_id == "delete-backup":
        left = sorted(journal.directory.glob("*.bundle"))
        left += [Path(str(e.data["path"])) for e in journal.find("purge", "backup-done")
                 if e.data.get("path") and Path(str(e.data["path"])).exists()]
    elif step_id.startswith("move-new-key-"):
        left = sorted(journal.directory.glob(f"new-key-{step_id[13:]}*.txt"))
    else:
        return
    if left:
        shown = sorted({str(p) for p in left})
        raise UsageError(
            f"{shown[0]} still exists and holds a key; step {step_id} is not done "
            "while it does",
            "Delete it (shred -u " + " ".join(shown) + "), then close the step.")


@step_group.command("list")
@_incident_option
def step_list(incident_dir: Path | None, incident_id: str | None) -> None:
    """Show the open manual steps of an incident (exit 1 while any is open)."""
    journal = _open(incident_dir, incident_id)
    steps = open_manual_steps(journal)
    if not steps:
        out.print(f"Incident {escape(journal.incident_id)}: no open manual step.")
        return
    for step in steps:
        out.print(f"{escape(step['step_id'])}: {escape(step.get('title', ''))} "
                  f"(open since {escape(step['time'])})")
        for line in step.get("instructions", []):
            out.print(f"    - {escape(str(line))}")
    out.print("When one is done: "
              + escape(journal.command("step", "done", "STEP_ID")))
    finish(ExitCode.FINDINGS)


@step_group.command("done")
@click.argument("step_id")
@_incident_option
@click.option("--note", default="", help="What was done, for the record.")
def step_done(step_id: str, incident_dir: Path | None, incident_id: str | None,
              note: str) -> None:
    """Record that STEP_ID was done by hand (a manual step, or a failed step that
    was finished another way, so `respond --resume` goes past it)."""
    journal = _open(incident_dir, incident_id)
    pending = {s["step_id"] for s in open_manual_steps(journal)}
    started = journal.find("respond", "started")
    playbook_ids: set[str] = set()
    if started:
        copy = journal.directory / "playbook.yaml"
        if copy.exists():
            playbook_ids = {s.id for s in load_playbook(copy).steps}
    closed = journal.find(None, "manual-step-done", step_id=step_id)
    if closed and step_id not in pending:
        out.print(f"{escape(step_id)} was already closed at {escape(closed[0].time)} "
                  f"by {escape(closed[0].actor or 'someone')}; nothing to do. "
                  f"{len(open_manual_steps(journal))} manual step(s) still open.")
        return
    if step_id not in pending and step_id not in playbook_ids:
        known = ", ".join(sorted(pending | playbook_ids)) or "none"
        raise UsageError(f"incident {journal.incident_id} has no open step "
                         f"{step_id!r}", f"Open or known steps: {known}")
    _refuse_while_secrets_remain(journal, step_id)
    journal.append(step_id, "manual-step-done", step_id=step_id, note=note)
    left = len(open_manual_steps(journal))
    out.print(f"Closed {escape(step_id)} in incident {escape(journal.incident_id)}; "
              f"{left} manual step(s) still open.")
    out.print("Next: " + ("incident step list --incident "
                          f"{escape(journal.incident_id)} shows them" if left else
                          f"incident report {escape(journal.incident_id)} writes the "
                          "final record"))
