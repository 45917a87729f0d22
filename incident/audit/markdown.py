"""Render an audit as Markdown, for a pull request, a ticket or the incident record."""

from __future__ import annotations

from incident.audit.model import AuditReport, Status

_MARK = {Status.PASS: "✅ pass", Status.WARN: "⚠️ warn", Status.UNKNOWN: "❓ unknown",
         Status.FAIL: "❌ fail"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: AuditReport) -> str:
    """Return the whole audit as a Markdown document."""
    lines = [
        f"# Audit of `{report.repository}`",
        "",
        f"**Verdict: {report.verdict}** (exit {int(report.verdict.exit_code)}), "
        f"audited {report.audited_at}.",
        "",
        "| Status | Check | Found |",
        "|---|---|---|",
    ]
    lines.extend(
        f"| {_MARK[c.status]} | {_cell(c.title)} | {_cell(c.summary)} |"
        for c in report.checks
    )
    for check in report.checks:
        if check.status is Status.PASS and not check.items:
            continue
        lines += ["", f"## {_MARK[check.status]}: {check.title}", "",
                  check.summary, "", f"*Why it matters:* {check.why}"]
        if check.fix:
            lines += ["", f"*Fix:* {check.fix}"]
        if check.items:
            lines += ["", "| Status | Where | What |", "|---|---|---|"]
            lines.extend(
                f"| {_MARK[i.status]} | `{_cell(i.where)}` | {_cell(i.detail)} |"
                for i in check.items
            )
    return "\n".join(lines) + "\n"
