"""Write the incident's reports into its own folder and journal where they are."""

from __future__ import annotations

from pathlib import Path

from incident.fsutil import write_atomic
from incident.journal import Journal
from incident.report.render import ReportFormat, ensure_no_secret, render_timeline
from incident.report.timeline import build_timeline

_SUFFIX = {ReportFormat.MARKDOWN: "md", ReportFormat.JSON: "json",
           ReportFormat.HTML: "html"}


def write_reports(journal: Journal, formats: list[str]) -> list[Path]:
    """Render the timeline in each format to ``report.<ext>`` in the incident folder.

    Raises:
        RefusedError: a report would hold a key-shaped value; nothing is written.
    """
    timeline = build_timeline(journal)
    texts = {ReportFormat(f): ensure_no_secret(render_timeline(timeline, f))
             for f in formats}
    paths = []
    for fmt, text in texts.items():
        # 0600 like the rest of the folder: it names people and commit ids.
        path = write_atomic(journal.directory / f"report.{_SUFFIX[fmt]}",
                            text.encode(), mode=0o600)
        journal.append("record", "report-written", path=str(path), format=str(fmt))
        paths.append(path)
    return paths
