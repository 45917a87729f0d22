"""Render the incident timeline as Markdown, JSON or one self-contained HTML file.

Every renderer ends in ensure_no_secret(): a report that holds anything shaped like
a Stripe secret is refused, never returned, whatever the journal held.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from incident.detect.rules import KEY_PATTERN
from incident.errors import RefusedError
from incident.redact import redact_text, short_fingerprint
from incident.report.clock import describe_duration, show_time
from incident.report.model import Timeline

_URL_SCHEME = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*):(//)")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]<>|])")


class ReportFormat(StrEnum):
    """Formats of ``incident report``; the value is the CLI spelling."""

    MARKDOWN = "markdown"
    JSON = "json"
    HTML = "html"


def defang(value: Any) -> Any:
    """Break URLs in text (``https[:]//host``) so the HTML names no outside address.

    The HTML report must load nothing and link nowhere; a Dashboard address or a
    remote URL is still readable for a person, but is not a link or a fetch.
    """
    if isinstance(value, str) and not isinstance(value, Markup):
        return _URL_SCHEME.sub(r"\1[:]\2", value)
    return value


def markdown_text(value: object) -> str:
    """Escape text for Markdown (tables included): no markup, no line breaks."""
    text = " ".join(str(value if value is not None else "").split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def markdown_code(value: object) -> str:
    """Show an id, ref or redacted key as inline code."""
    text = " ".join(str(value if value is not None else "").split()).replace("`", "'")
    return f"`{text}`" if text else "—"


def yes_no(value: object) -> str:
    """``yes``, ``no`` or ``unknown`` for a flag that may be missing."""
    if value is None:
        return "unknown"
    return "yes" if value else "no"


def _environment(html: bool) -> Environment:
    env = Environment(
        loader=PackageLoader("incident.report", "templates"),
        autoescape=select_autoescape(
            enabled_extensions=("html.j2",), default_for_string=False
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=defang if html else None,
    )
    env.filters.update(
        when=show_time,
        duration=describe_duration,
        short=lambda sha: str(sha or "")[:12] or "?",
        fp=lambda value: f"sha256:{short_fingerprint(str(value or ''))}",
        md=markdown_text,
        code=markdown_code,
        yesno=yes_no,
    )
    return env


def render_json(timeline: Timeline) -> str:
    """The documented JSON form (see the README: ``incident report``)."""
    text = json.dumps(timeline.to_dict(), indent=2, ensure_ascii=False) + "\n"
    return ensure_no_secret(text)


def render_markdown(timeline: Timeline) -> str:
    """Markdown for the incident ticket: status, keys, rewrite, steps, actions."""
    template = _environment(html=False).get_template("timeline.md.j2")
    return ensure_no_secret(template.render(t=timeline))


def render_html(timeline: Timeline) -> str:
    """One self-contained HTML file: inline CSS, no script, font or outside URL."""
    template = _environment(html=True).get_template("timeline.html.j2")
    return ensure_no_secret(template.render(t=timeline))


RENDERERS = {
    ReportFormat.MARKDOWN: render_markdown,
    ReportFormat.JSON: render_json,
    ReportFormat.HTML: render_html,
}


def render_timeline(timeline: Timeline, fmt: ReportFormat | str) -> str:
    """Render timeline in fmt; refuse if the text holds anything key-shaped.

    Raises:
        RefusedError: the rendered report holds a Stripe-secret-shaped value.
    """
    return RENDERERS[ReportFormat(fmt)](timeline)


def has_secret(text: str) -> bool:
    """True when text holds anything shaped like a Stripe secret (even a loose one)."""
    return bool(KEY_PATTERN.search(text.encode())) or redact_text(text) != text


def ensure_no_secret(text: str) -> str:
    """Return text unchanged, or refuse it if it holds a secret-shaped value.

    Raises:
        RefusedError: something key-shaped reached the report; nothing is written.
    """
    if has_secret(text):
        raise RefusedError(
            "refusing to write the report: it would hold a value shaped like a "
            "Stripe secret (the journal was edited or a writer leaked a key)",
            "Find the line with: grep -nE '(sk|rk)_(live|test)_|whsec_' "
            "JOURNAL_DIR/journal.jsonl; remove the value (roll that key if real), "
            "then run incident report again.",
        )
    return text
