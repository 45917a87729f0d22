"""``incident scan``: report every Stripe credential ever committed to a repository."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from incident.cli import finish
from incident.cli.console import err, out, progress_bar
from incident.cli.options import output_option, quiet_option, repo_argument
from incident.errors import ExitCode
from incident.fsutil import write_atomic
from incident.history import ScanReport, scan_repository
from incident.redact import short_fingerprint
from incident.report.findings import (
    describe_first_seen,
    describe_location,
    next_steps,
    render_json,
    render_markdown,
    render_text,
)
from incident.report.sarif import render_sarif


class ScanFormat(StrEnum):
    """Output formats of ``incident scan``; the value is the CLI spelling."""

    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    MARKDOWN = "markdown"


RENDERERS = {
    ScanFormat.TEXT: render_text,
    ScanFormat.JSON: render_json,
    ScanFormat.SARIF: render_sarif,
    ScanFormat.MARKDOWN: render_markdown,
}


def run_scan(
    repo: Path, *, include_publishable: bool, show_ignored: bool, quiet: bool
) -> ScanReport:
    """Scan with a progress bar on stderr when it is a terminal and not quiet."""
    with progress_bar("Reading objects", quiet) as advance:
        return scan_repository(
            repo,
            include_publishable=include_publishable,
            show_ignored=show_ignored,
            progress=advance,
        )


def print_table(report: ScanReport) -> None:
    """The rich view for a terminal: one table of findings, then what to do."""
    if report.findings or report.publishable or report.ignored:
        table = Table(
            title=f"Stripe credentials in {escape(report.repository)}", show_lines=True
        )
        for column in ("Key", "Kind", "First seen", "Refs", "Where"):
            table.add_column(column, overflow="fold")
        for finding in report.findings + report.publishable + report.ignored:
            style = (
                "bold red"
                if finding.severity == "critical"
                else "dim"
                if finding.ignored
                else None
            )
            key = (
                f"{finding.redacted}\nsha256:{short_fingerprint(finding.fingerprint)}"
                + (f"\nignored: {finding.ignored}" if finding.ignored else "")
            )
            table.add_row(
                escape(key),
                f"{finding.kind}\n{finding.mode}",
                escape(describe_first_seen(finding)),
                escape("\n".join(finding.shown_refs) or "unreachable"),
                escape("\n".join(describe_location(loc) for loc in finding.locations)),
                style=style,
            )
        out.print(table)
    else:
        out.print(
            "No Stripe secret found."
            if not report.incomplete
            else "No Stripe secret found in what could be read."
        )
    for item in report.unscanned:
        out.print(f"[yellow]Not scanned[/] ({item.kind}): {escape(item.detail)}")
    for number, step in enumerate(next_steps(report), 1):
        out.print(f"{number}. {escape(step)}")


@click.command("scan")
@repo_argument
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice([f.value for f in ScanFormat]),
    default=None,
    help="Output format [default: a table on a terminal, text when piped].",
)
@output_option
@click.option(
    "--include-publishable",
    is_flag=True,
    help="Also list publishable (pk_) keys, at low severity.",
)
@click.option(
    "--show-ignored",
    is_flag=True,
    help="Also list placeholders, documentation examples and allowlisted "
    "keys, with the reason each was ignored.",
)
@quiet_option
def scan_cmd(
    repo: Path,
    fmt: str | None,
    output: Path | None,
    include_publishable: bool,
    show_ignored: bool,
    quiet: bool,
) -> None:
    """Find every Stripe key ever committed to REPO (default: here).

    Reads every object in the repository once: all branches, tags, remote-tracking
    refs, stash, notes, reflogs and unreachable objects, including encoded content
    (UTF-16, base64, URL, JSON escapes, gzip and zip). Exit 0: none found; 1: keys
    found, or the history could not be read whole; 2: the scan could not be done.
    """
    report = run_scan(
        repo,
        include_publishable=include_publishable,
        show_ignored=show_ignored,
        quiet=quiet,
    )

    to_stdout = output is None or str(output) == "-"
    if fmt is None and to_stdout and out.is_terminal:
        print_table(report)
    else:
        text = RENDERERS[ScanFormat(fmt or "text")](report)
        if to_stdout:
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            assert output is not None
            write_atomic(output, text.encode())
            if not quiet:
                err.print(f"Wrote the report to {escape(str(output))}")

    if not quiet:
        _print_summary(report)
    finish(ExitCode.FINDINGS if report.findings or report.incomplete else ExitCode.OK)


def _print_summary(report: ScanReport) -> None:
    if report.incomplete:
        err.print(
            "[bold yellow]Incomplete:[/] part of the history could not be read; "
            "this result does not prove the repository clean."
        )
    if report.findings:
        live = sum(1 for f in report.findings if f.mode == "live")
        err.print(
            f"[bold red]{len(report.findings)} Stripe secret(s) found[/]"
            f" ({live} live). Next: incident respond {escape(report.repository)}"
        )
