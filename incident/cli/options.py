"""Option decorators shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def output_option(func: F) -> F:
    """``-o/--output FILE``: write the result there instead of stdout (``-``)."""
    return click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, path_type=Path, allow_dash=True),
        default=None,
        help="Write the result to FILE instead of stdout.",
    )(func)


def repo_argument(func: F) -> F:
    """``REPO``: the repository to work on, the current directory by default."""
    return click.argument(
        "repo",
        type=click.Path(file_okay=False, path_type=Path),
        default=".",
    )(func)


def dry_run_option(func: F) -> F:
    """``--dry-run``: show what would happen, change nothing."""
    return click.option(
        "--dry-run", is_flag=True, help="Show what would happen; change nothing."
    )(func)


def yes_option(func: F) -> F:
    """``--yes``: skip confirmations (for scripts)."""
    return click.option(
        "-y", "--yes", is_flag=True, help="Do not ask before irreversible steps."
    )(func)


def quiet_option(func: F) -> F:
    """``--quiet``: no progress bar, no summary on stderr."""
    return click.option(
        "-q", "--quiet", is_flag=True, help="No progress or summary on stderr."
    )(func)


def refuse_credentials_in_remote(remote: str) -> None:
    """A --remote URL with a password or token would be journaled and printed.

    Raises:
        UsageError: remote carries credentials; says how to name it instead.
    """
    from incident.errors import UsageError
    from incident.redact import mask_url_credentials

    if mask_url_credentials(remote) != remote:
        raise UsageError(
            f"--remote {mask_url_credentials(remote)} carries credentials, which "
            "would end up in the journal and the report",
            "Add it as a named remote (git remote add incident-push URL) and pass "
            "--remote incident-push; git then keeps the credentials to itself.",
        )
