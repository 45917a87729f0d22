"""The two consoles every command writes through: results out, the rest to stderr."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

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


@contextmanager
def progress_bar(
    description: str, quiet: bool = False
) -> Iterator[Callable[[int, int], None] | None]:
    """A (done, total) callback drawing a bar on stderr; None when not a terminal."""
    if quiet or not err.is_terminal:
        yield None
        return
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield advance
