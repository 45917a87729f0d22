"""Exit codes and the exception family every command maps onto them.

Each error carries three parts for an operator under pressure: what happened, the
value it happened to, and the next step (ideally a runnable command).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes shared by every command."""

    OK = 0
    FINDINGS = 1  # scan finished and found leaked keys (or could not prove clean)
    USAGE = 2  # bad arguments, not a repository: the job could not be done
    REFUSED = 3  # a safety check failed, or the user said no; nothing changed
    STRIPE = 4  # Stripe API error: authentication, permission, rate limit, network
    GIT = 5  # git or git-filter-repo failed
    INTERNAL = 128


class IncidentError(Exception):
    """Base of every error the CLI knows how to report.

    Args:
        message: what happened, naming the value it happened to.
        hint: the next step for the operator, ideally a command to run.
    """

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(IncidentError):
    """The job cannot be started as asked (not a repository, bad argument)."""

    exit_code = ExitCode.USAGE


class NotARepositoryError(UsageError):
    """The path given is not a git repository."""


class RefusedError(IncidentError):
    """A safety check refused to go on; nothing was changed."""

    exit_code = ExitCode.REFUSED


class GitError(IncidentError):
    """A git or git-filter-repo command failed."""

    exit_code = ExitCode.GIT


class StripeApiError(IncidentError):
    """Stripe refused or could not be reached."""

    exit_code = ExitCode.STRIPE
