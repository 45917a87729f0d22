"""The two consoles every command writes through: results out, the rest to stderr."""

from __future__ import annotations

import logging
import os

from rich.console import Console
from rich.logging import RichHandler

from incident.redact import RedactingFilter

# NOTE: soft_wrap keeps long lines (paths, commands) whole when piped, so they can be
# copied and grepped; highlight is off so user text is never restyled.
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


def configure_logging(verbosity: int, debug: bool) -> None:
    """Send logging to stderr through rich, masking anything shaped like a key."""
    level = logging.DEBUG if debug else logging.INFO if verbosity else logging.WARNING
    handler = RichHandler(
        console=err,
        markup=False,
        rich_tracebacks=debug,
        show_path=debug,
        show_time=debug,
    )
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def is_color_disabled() -> bool:
    """True when NO_COLOR asks for plain output."""
    return bool(os.environ.get("NO_COLOR"))
