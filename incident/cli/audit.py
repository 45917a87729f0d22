"""``incident audit``: go / no-go before publishing a repo or closing an incident."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from incident.audit import AuditReport, Status, Verdict, run_audit
from incident.audit.markdown import render_markdown
from incident.cli.console import err, out
from incident.cli.options import output_option, quiet_option, repo_argument
from incident.fsutil import write_atomic

_MARK = {Status.PASS: "[green]PASS[/]", Status.WARN: "[yellow]WARN[/]",
         Status.UNKNOWN: "[magenta]UNKNOWN[/]", Status.FAIL: "[bold red]FAIL[/]"}
_VERDICT = {Verdict.GO: "[bold green]GO[/]", Verdict.NO_GO: "[bold red]NO-GO[/]",
            Verdict.UNDECIDED: "[bold magenta]COULD NOT DECIDE[/]"}


def _render_rich(report: AuditReport) -> None:
    out.print(f"Audit of {escape(report.repository)}: {_VERDICT[report.verdict]}")
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("Status")
    table.add_column("Check")
    table.add_column("Found")
    for check in report.checks:
        table.add_row(_MARK[check.status], escape(check.title), escape(check.summary))
    out.print(table)
    for check in report.checks:
        if check.status is Status.PASS and not check.items:
            continue
        out.print(f"\n{_MARK[check.status]} {escape(check.title)}")
        for item in check.items:
            out.print(f"  {_MARK[item.status]} {escape(item.where)}: "
                      f"{escape(item.detail)}")
        out.print(f"  Why: {escape(check.why)}")
        if check.fix:
            out.print(f"  Fix: {escape(check.fix)}")


@click.command("audit", context_settings={"help_option_names": ["-h", "--help"]})
@repo_argument
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]),
              default="text", show_default=True, help="Output format.")
@output_option
@quiet_option
@click.pass_context
def audit_cmd(ctx: click.Context, repo: Path, fmt: str, output: Path | None,
              quiet: bool) -> None:
    """Decide whether REPO can be published (or an incident closed).

    Scans the whole history, then checks how the current tree handles keys:
    hard-coded keys, Stripe clients reading the environment, .env files, CI,
    Docker, Kubernetes and notebooks. Exit 0 go, 1 no-go, 2 could not decide.
    """
    if not quiet:
        err.print("Auditing history and the current tree…")
    report = run_audit(repo)

    if fmt == "text" and (output is None or str(output) == "-"):
        _render_rich(report)
    else:
        text = (json.dumps(report.to_dict(), indent=2) + "\n" if fmt == "json"
                else render_markdown(report) if fmt == "markdown"
                else _plain_text(report))
        if output is None or str(output) == "-":
            out.out(text, end="", highlight=False)
        else:
            write_atomic(output, text.encode())
            err.print(f"Wrote the audit to {escape(str(output))}")
    if not quiet:
        err.print(f"Verdict: {report.verdict}")
    ctx.exit(int(report.verdict.exit_code))


def _plain_text(report: AuditReport) -> str:
    lines = [f"Audit of {report.repository}: {report.verdict}"]
    for check in report.checks:
        lines.append(f"[{check.status}] {check.title}: {check.summary}")
        lines.extend(f"  [{i.status}] {i.where}: {i.detail}" for i in check.items)
        if check.fix:
            lines.append(f"  Fix: {check.fix}")
    return "\n".join(lines) + "\n"
