"""``incident roll``: rotate leaked keys through Stripe and deliver the new ones."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from incident.cli import set_resume_hint
from incident.cli.console import err, out
from incident.cli.options import dry_run_option, repo_argument, yes_option
from incident.delivery import anchor_target
from incident.detect.rules import KeyKind, Mode, is_key
from incident.errors import ExitCode, UsageError
from incident.journal import DEFAULT_ROOT, Journal, keep_out_of_git, operator_identity
from incident.keys import (
    MAX_GRACE_MINUTES,
    LeakedKey,
    RollOptions,
    RollResult,
    RollStatus,
    check_roll_options,
    roll_keys,
)
from incident.lock import repository_lock
from incident.redact import short_fingerprint

API_BASE_ENV = "INCIDENT_STRIPE_API_BASE"

# NOTE: manual-pending maps to FINDINGS: a leaked secret is still valid, so the
# repository's keys are not contained yet, which is what code 1 tells a script.
_EXIT_BY_STATUS = {
    RollStatus.FAILED: ExitCode.STRIPE,
    RollStatus.NOT_FOUND: ExitCode.REFUSED,
    RollStatus.AMBIGUOUS: ExitCode.REFUSED,
    RollStatus.MANUAL_PENDING: ExitCode.FINDINGS,
}


@click.command("roll")
@repo_argument
@click.option(
    "--key-env",
    metavar="VAR",
    help="Roll the one key held in environment variable VAR instead of scanning REPO.",
)
@click.option(
    "--include-test", is_flag=True, help="Also roll test-mode keys found by the scan."
)
@click.option(
    "--api-key",
    envvar="STRIPE_API_KEY",
    default=None,
    show_default=False,
    show_envvar=True,
    metavar="KEY",
    help="Key that authenticates the rotation (read from STRIPE_API_KEY; "
    "prefer the variable, so the key stays out of shell history).",
)
@click.option(
    "--use-leaked-key",
    is_flag=True,
    help="Authenticate with each leaked key itself (no STRIPE_API_KEY).",
)
@click.option(
    "--api-base",
    envvar=API_BASE_ENV,
    default=None,
    metavar="URL",
    show_envvar=True,
    help="Send every Stripe call to URL (for example the offline sandbox).",
)
@click.option(
    "--grace",
    type=click.IntRange(0, MAX_GRACE_MINUTES),
    default=0,
    metavar="MINUTES",
    show_default=True,
    help="Keep the old key working this long (at most 10080 = 7 days).",
)
@click.option(
    "--deliver",
    multiple=True,
    metavar="TARGET",
    help="Where the new key goes (repeatable): file:PATH, "
    "env-file:PATH:VAR, aws-secretsmanager:SECRET_ID, exec:COMMAND.",
)
@dry_run_option
@yes_option
@click.option(
    "--incident-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder that holds incidents [default: REPO/.incident].",
)
@click.option(
    "--incident",
    "incident_id",
    metavar="ID",
    default=None,
    help="Resume this incident (its journal says what already happened).",
)
def roll_cmd(
    repo: Path,
    key_env: str | None,
    include_test: bool,
    api_key: str | None,
    use_leaked_key: bool,
    api_base: str | None,
    grace: int,
    deliver: tuple[str, ...],
    dry_run: bool,
    yes: bool,
    incident_dir: Path | None,
    incident_id: str | None,
) -> int:
    """Rotate the live Stripe keys leaked in REPO and deliver the new keys.

    Each key is checked (is it still live?), found among the account's API keys,
    rotated (the old key expires now, or after --grace), and the new key is written
    to every --deliver target before anything else happens. A crash or Ctrl-C is
    safe: run the same command with --incident ID and it resumes without rotating
    twice. Webhook secrets (whsec_) cannot be rolled through the API: the command
    prints the Dashboard steps and keeps the step open in the journal.
    """
    # A resumed incident may have purged its keys already: they come back from
    # the purge's backup bundle.
    known = _existing_journal(repo, incident_dir, incident_id) if not key_env else None
    leaked = _collect(repo, key_env, include_test, known)
    if not leaked:
        err.print(
            "No live Stripe secret to roll"
            + (" (test keys skipped; add --include-test)." if not key_env else ".")
        )
        return ExitCode.OK

    if known is not None and not deliver:
        deliver = _recorded_targets(known)
        if deliver:
            err.print("Delivering as this incident recorded: "
                      + escape(", ".join(deliver)))
    options = RollOptions(
        api_key=api_key or None,
        use_leaked_key=use_leaked_key,
        api_base=api_base,
        grace_minutes=grace,
        # Journaled and reused on resume, perhaps from another directory.
        deliver=tuple(anchor_target(d, Path.cwd()) for d in deliver),
        dry_run=dry_run,
    )
    check_roll_options(options, leaked)
    _print_plan(leaked, options)
    if not dry_run and not yes:
        click.confirm("Rotate now? The old keys stop working", abort=True, err=True)

    journal = (
        None
        if dry_run
        else _journal(repo if not key_env else None, incident_dir, incident_id)
    )
    if journal is not None:
        set_resume_hint(journal.command("roll", shlex.quote(str(repo))))
        err.print(
            f"Incident {escape(journal.incident_id)}: journal at "
            f"{escape(str(journal.path))}"
        )
    if key_env or dry_run:
        results = roll_keys(leaked, options, journal)
    else:
        with repository_lock(repo, "incident roll"):
            results = roll_keys(leaked, options, journal)

    _print_results(results)
    _print_notes(results, journal, repo)
    codes = [_EXIT_BY_STATUS.get(r.status, ExitCode.OK) for r in results]
    return max(codes, default=ExitCode.OK)


def _recorded_targets(journal: Journal) -> tuple[str, ...]:
    """The --deliver values this incident ran with, so a resume delivers the same."""
    for event in reversed(journal.events()):
        if event.event == "roll-started" and event.data.get("specs"):
            return tuple(map(str, event.data["specs"]))
        if event.step == "respond" and event.event == "started":
            return tuple(map(str, (event.data.get("options") or {}).get("deliver")
                             or ()))
    return ()


def _existing_journal(
    repo: Path, incident_dir: Path | None, incident_id: str | None
) -> Journal | None:
    if incident_id is None:
        return None
    return Journal.open(incident_dir or repo / DEFAULT_ROOT, incident_id)


def _collect(
    repo: Path, key_env: str | None, include_test: bool, journal: Journal | None
) -> list[LeakedKey]:
    """The keys to roll: one from --key-env, or the scan's secret findings.

    With an incident's journal, keys it recorded that are gone from the repository
    (purged since) are read back from the purge's backup.
    """
    if key_env:
        value = os.environ.get(key_env, "").strip()
        if not value:
            raise UsageError(
                f"environment variable {key_env} is empty or not set",
                f"export {key_env}=... then run the command again.",
            )
        if not is_key(value):
            raise UsageError(
                f"{key_env} does not hold one Stripe secret key",
                "It must be exactly one sk_/rk_ key or whsec_ secret.",
            )
        key = LeakedKey.from_secret(value, source=f"${key_env}")
        if key.kind is KeyKind.PUBLISHABLE_KEY:
            raise UsageError(
                f"{key_env} holds a publishable key; those are public",
                "Nothing to roll: pk_ keys are meant for browsers.",
            )
        return [key]

    from incident.history import scan_repository

    report = scan_repository(repo)
    if report.incomplete:
        err.print(
            "[yellow]Warning:[/] part of the history could not be read; keys "
            "there are not rolled. See: incident scan " + escape(str(repo))
        )
    findings = list(report.findings)
    if journal is not None:
        from incident.respond.secrets import recorded_fingerprints, recover_findings

        present = {f.fingerprint for f in findings}
        wanted = [fp for fp in recorded_fingerprints(journal) if fp not in present]
        if wanted:
            back = recover_findings(repo, wanted, journal, report=report, strict=False)
            findings += back.values()
            if len(back) < len(wanted):
                err.print(
                    f"[yellow]Warning:[/] {len(wanted) - len(back)} key(s) this "
                    "incident recorded are neither in the repository nor in a "
                    "backup it made; roll them by hand in the Stripe Dashboard."
                )
    keys = []
    for finding in findings:
        if not finding.kind.is_secret:
            continue
        if finding.mode is Mode.TEST and not include_test:
            continue
        keys.append(LeakedKey.from_finding(finding))
    return keys


def _journal(
    repo: Path | None, incident_dir: Path | None, incident_id: str | None
) -> Journal:
    root = incident_dir or (
        (repo / DEFAULT_ROOT) if repo else Path.cwd() / DEFAULT_ROOT
    )
    journal = Journal.open(root, incident_id) if incident_id else Journal.create(root)
    # The incident folder holds secret files: keep it out of `git add -A`.
    keep_out_of_git(journal.directory.parent)
    journal.actor = operator_identity(repo or Path.cwd())  # the report says who
    return journal


def _print_plan(leaked: list[LeakedKey], options: RollOptions) -> None:
    who = (
        "each leaked key itself"
        if options.use_leaked_key or not options.api_key
        else "STRIPE_API_KEY"
    )
    where = ", ".join(options.deliver) or "an emergency file in the incident folder"
    api = [k for k in leaked if k.kind is not KeyKind.WEBHOOK_SECRET]
    manual = len(leaked) - len(api)
    err.print(
        f"{'Would roll' if options.dry_run else 'Rolling'} {len(api)} key(s)"
        + (f" ({manual} webhook secret(s) get Dashboard steps)" if manual else "")
        + ", "
        f"authenticated by {who}; new keys go to {escape(where)}; old keys "
        + (
            f"expire after {options.grace_minutes} min."
            if options.grace_minutes
            else "expire immediately."
        )
    )
    for key in leaked:
        source = f" ({escape(key.source)})" if key.source else ""
        err.print(
            f"  {escape(key.redacted)}  {key.kind} {key.mode}  "
            f"sha256:{short_fingerprint(key.fingerprint)}{source}"
        )
    if options.api_base:
        err.print(f"Stripe API base: {escape(options.api_base)}")


def _print_results(results: list[RollResult]) -> None:
    table = Table(title="incident roll", show_lines=True)
    for column in (
        "Key",
        "Status",
        "Old key",
        "New key",
        "Accepted / rejected",
        "Last used",
        "Delivered to",
    ):
        table.add_column(column, overflow="fold")
    for r in results:
        delivered = list(r.delivered_to)
        if r.emergency_file:
            delivered.append(f"emergency file {r.emergency_file}")
        table.add_row(
            escape(f"{r.redacted}\nsha256:{short_fingerprint(r.fingerprint)}"),
            str(r.status),
            escape(r.old_key_id or "-"),
            escape(f"{r.new_key_id or '-'}\n{r.new_redacted or ''}".strip()),
            escape(f"{r.rotation_accepted_at or '-'}\n{r.old_key_rejected_at or '-'}"),
            escape(r.last_used or "-"),
            escape("\n".join(delivered) or "-"),
        )
    out.print(table)


def _print_notes(
    results: list[RollResult], journal: Journal | None, repo: Path
) -> None:
    """Per-key messages, every file that now holds a secret, and what to do next."""
    for r in results:
        err.print(f"{escape(r.redacted)}: [bold]{r.status}[/] {escape(r.message)}")
        for number, step in enumerate(r.manual_steps, 1):
            err.print(f"  {number}. {escape(step)}")
        for target in r.delivered_to:
            kind, _, rest = target.partition(":")
            if kind == "file":
                err.print(f"  The new key is in {escape(rest)} (0600).")
            elif kind == "env-file":
                path, _, variable = rest.rpartition(":")
                err.print(f"  The new key is in {escape(path)} (variable {variable}).")
        if r.emergency_file:
            err.print(
                f"  [bold yellow]The new key is in {escape(str(r.emergency_file))}"
                " (0600). Move it where your app reads it, then delete the "
                "file.[/]"
            )
    rolled = sum(r.status is RollStatus.ROLLED for r in results)
    retry = [
        r
        for r in results
        if r.status in (RollStatus.FAILED, RollStatus.NOT_FOUND, RollStatus.AMBIGUOUS)
    ]
    err.print(
        f"{rolled} of {len(results)} key(s) rolled"
        + ("; see the journal for details." if journal is not None else ".")
    )
    if journal is not None and retry:
        err.print(
            "After fixing the cause, resume with: "
            + escape(journal.command("roll", shlex.quote(str(repo))))
        )
    purged = journal is not None and journal.find("purge", "rewrite-done")
    if rolled and not purged:
        err.print("Next: remove the leaked keys from history: incident purge "
                  + escape(shlex.quote(str(repo))))
