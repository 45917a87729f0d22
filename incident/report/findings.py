"""Render a ScanReport as JSON, Markdown or plain text (the rich table is in cli/)."""

from __future__ import annotations

import json

from incident.history.model import Finding, Location, ScanReport
from incident.redact import short_fingerprint


def render_json(report: ScanReport) -> str:
    """The documented JSON form (see README: "JSON output")."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def describe_location(location: Location) -> str:
    """One line naming where a secret sits, e.g. ``a1b2c3d4e5f6 app/config.py:12``."""
    commit = location.commit[:12] if location.commit else "(no commit)"
    encoding = "" if location.encoding == "plain" else f" [{location.encoding}]"
    member = f" → {location.shown_member}" if location.shown_member else ""
    reach = "" if location.reachable else " (unreachable)"
    if location.source == "commit-message":
        where = f"commit message of {commit}, line {location.line}"
    elif location.source == "tag-message":
        where = f"message of tag {location.tag}, line {location.line}"
    elif location.source == "ref-name":
        where = f"ref name {location.shown_path}"
    elif location.source == "note":
        where = (
            f"git note on {(location.annotated_commit or '')[:12]} "
            f"(notes commit {commit}), line {location.line}"
        )
    elif location.source == "index":
        where = f"staged in the index: {location.shown_path}:{location.line}"
    elif location.shown_path is None:
        where = f"dangling blob {location.object_id[:12]}, line {location.line}"
    else:
        where = f"{commit} {location.shown_path}:{location.line}"
    return where + member + encoding + reach


def describe_first_seen(finding: Finding) -> str:
    first = finding.first_seen
    if first is None:
        return "unknown"
    return (
        f"{first.committer_date} in {first.sha[:12]} by "
        f"{first.author_name} <{first.author_email}>"
    )


def next_steps(report: ScanReport) -> list[str]:
    """What the operator should do next, in order."""
    steps: list[str] = []
    live = [f for f in report.findings if f.mode == "live"]
    if report.findings:
        steps.append(
            "Treat every key above as compromised: roll it now "
            f"(incident roll {report.repository}) or run the whole response "
            f"(incident respond {report.repository})."
        )
        steps.append(f"Then remove it from history: incident purge {report.repository}")
    if live:
        steps.insert(0, f"{len(live)} live-mode key(s): this is an emergency.")
    if report.incomplete:
        steps.append(
            "Part of the history could not be read (see 'Not scanned'): fix that "
            "and scan again before calling this repository clean."
        )
    return steps


def _summary_line(report: ScanReport) -> str:
    if report.findings:
        state = f"{len(report.findings)} secret(s) found"
    elif report.incomplete:
        state = "no secret found in what could be read, but the scan is INCOMPLETE"
    else:
        state = "no Stripe secret found"
    return (
        f"{state}; {report.stats.objects} objects scanned in "
        f"{report.stats.seconds:.1f}s"
    )


def render_text(report: ScanReport) -> str:
    """Plain, grep-able text for pipes and logs."""
    lines = [f"incident scan of {report.repository}: {_summary_line(report)}"]
    for title, group in (
        ("SECRET", report.findings),
        ("PUBLISHABLE", report.publishable),
        ("IGNORED", report.ignored),
    ):
        for finding in group:
            lines.append("")
            lines.append(
                f"{title} {finding.kind} {finding.mode} {finding.redacted} "
                f"sha256:{finding.fingerprint}"
            )
            if finding.ignored:
                lines.append(f"  ignored: {finding.ignored}")
            lines.append(f"  first seen: {describe_first_seen(finding)}")
            refs = ", ".join(finding.shown_refs) or "(none: unreachable)"
            lines.append(f"  refs: {refs}")
            tips = ", ".join(finding.shown_tips) or "none"
            lines.append(f"  still at branch tips: {tips}")
            for location in finding.locations:
                lines.append(f"  at {describe_location(location)}")
    if report.unscanned:
        lines.append("")
        lines.append("NOT SCANNED")
        for item in report.unscanned:
            lines.append(f"  {item.kind}: {item.detail}")
    steps = next_steps(report)
    if steps:
        lines.append("")
        lines.append("NEXT STEPS")
        lines.extend(f"  {number}. {step}" for number, step in enumerate(steps, 1))
    return "\n".join(lines) + "\n"


def render_markdown(report: ScanReport) -> str:
    """Markdown for an incident ticket or a pull request."""
    out = [
        f"# Stripe key scan: `{report.repository}`",
        "",
        f"**Result:** {_summary_line(report)}  ",
        f"**Scanned at:** {report.scanned_at}  ",
        f"**Complete:** {'yes' if not report.incomplete else '**no**'}",
        "",
    ]
    if report.findings:
        out += [
            "## Secrets",
            "",
            "| Kind | Mode | Key | Fingerprint | First seen | Refs | At tips |",
            "|---|---|---|---|---|---|---|",
        ]
        for f in report.findings:
            out.append(
                f"| {f.kind} | {f.mode} | `{f.redacted}` | "
                f"`{short_fingerprint(f.fingerprint)}` | {describe_first_seen(f)} | "
                f"{', '.join(f'`{r}`' for r in f.shown_refs) or 'unreachable'} | "
                f"{', '.join(f.shown_tips) or 'none'} |"
            )
        out.append("")
        out.append("### Locations")
        out.append("")
        for f in report.findings:
            out.append(f"- `{f.redacted}` (`{short_fingerprint(f.fingerprint)}`)")
            out.extend(f"  - {describe_location(loc)}" for loc in f.locations)
        out.append("")
    for title, group in (
        ("Publishable keys (not secret)", report.publishable),
        ("Ignored", report.ignored),
    ):
        if group:
            out += [f"## {title}", ""]
            out.extend(
                f"- `{f.redacted}` {f.ignored or f.kind}: "
                + "; ".join(describe_location(loc) for loc in f.locations)
                for f in group
            )
            out.append("")
    if report.unscanned:
        out += ["## Not scanned", ""]
        out.extend(f"- **{item.kind}**: {item.detail}" for item in report.unscanned)
        out.append("")
    steps = next_steps(report)
    if steps:
        out += ["## Next steps", ""]
        out.extend(f"{n}. {step}" for n, step in enumerate(steps, 1))
        out.append("")
    return "\n".join(out)
