"""``incident report``: the incident timeline for the record, from the journal."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape

from incident.cli import finish
from incident.cli.console import err
from incident.cli.options import output_option
from incident.errors import ExitCode, RefusedError, UsageError
from incident.fsutil import write_atomic
from incident.journal import DEFAULT_ROOT, Journal, operator_identity
from incident.report.model import Timeline
from incident.report.render import ReportFormat, render_timeline
from incident.report.timeline import build_timeline


def open_journal(incident_dir: Path | None, incident_id: str) -> Journal:
    """Open the incident, naming the folder to list when the id is unknown."""
    try:
        return Journal.open(incident_dir, incident_id)
    except UsageError as exc:
        folder = incident_dir or Path(DEFAULT_ROOT)
        raise UsageError(
            exc.message,
            f"List incidents with: ls {folder}/  (or pass --incident-dir DIR, or the "
            "path of the incident folder)",
        ) from None


@click.command("report")
@click.argument("incident_id", metavar="ID")
@click.option(
    "--incident-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Folder that holds the incidents [default: ./{DEFAULT_ROOT}].",
)
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice([f.value for f in ReportFormat]),
    default=ReportFormat.MARKDOWN.value,
    show_default=True,
    help="markdown for the ticket, json for machines, html for one offline page.",
)
@output_option
def report_cmd(
    incident_id: str, incident_dir: Path | None, fmt: str, output: Path | None
) -> None:
    """Build the timeline of incident ID for the record.

    ID is an incident id under ./.incident/ (or --incident-dir), or the path of an
    incident folder. Everything comes from the journal: per key, when it was
    committed, pushed, used, rotated and revoked; every action, who ran it and
    when; open manual steps; detection to containment. Times are UTC; keys appear
    only redacted, with their SHA-256 fingerprint.
    """
    journal = open_journal(incident_dir, incident_id)
    timeline = build_timeline(journal)
    try:
        text = render_timeline(timeline, fmt)
    except RefusedError as exc:
        raise RefusedError(
            exc.message,
            (exc.hint or "").replace("JOURNAL_DIR/journal.jsonl", str(journal.path)),
        ) from None

    if output is None or str(output) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        # NOTE: 0600 because the report names people, paths and remotes.
        path = write_atomic(output, text.encode(), mode=0o600).resolve()
        journal.append(
            "record",
            "report-written",
            actor=operator_identity(),
            path=str(path),
            format=fmt,
        )
        err.print(f"Wrote the {fmt} report to {escape(str(path))}")

    print_summary(timeline)
    finish(ExitCode.OK)


def print_summary(timeline: Timeline) -> None:
    """One status line and the next step on stderr, so a piped report stays clean."""
    summary = timeline.summary
    for redacted in summary.used_after_leak:
        err.print(
            f"[bold red]Warning:[/] {escape(redacted)} was used after it was "
            "committed; review the Stripe request logs."
        )
    if timeline.incident.closed_at:
        err.print(
            f"Incident {escape(timeline.incident.id)} is closed; attach this report "
            "to the incident ticket."
        )
    else:
        err.print(
            f"Incident {escape(timeline.incident.id)} is open: "
            f"{len(summary.still_exposed)} key(s) still exposed, "
            f"{summary.open_manual_steps} manual step(s) open."
        )
    if summary.next_steps:
        err.print(f"Next: {escape(summary.next_steps[0])}")
