"""The ``incident`` command group and main(), which maps every error to an ExitCode.

Subcommands are imported only when they run, so ``incident scan`` does not pay for
loading the Stripe SDK, boto3 or the sandbox server.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from typing import Any

import click
from rich.markup import escape

from incident import __version__
from incident.cli.console import configure_logging, err
from incident.errors import ExitCode, IncidentError
from incident.redact import redact_text

logger = logging.getLogger(__name__)

# name -> (module, attribute, one-line help). Listed in the order of an incident.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "scan": ("incident.cli.scan", "scan_cmd", "Find every Stripe key ever committed."),
    "roll": ("incident.cli.roll", "roll_cmd", "Rotate exposed keys through Stripe."),
    "purge": ("incident.cli.purge", "purge_cmd", "Rewrite history to remove keys."),
    "respond": ("incident.cli.respond", "respond_cmd", "Run the whole response."),
    "report": ("incident.cli.report", "report_cmd", "Build the incident timeline."),
    "step": ("incident.cli.respond", "step_group", "Close a manual playbook step."),
    "audit": ("incident.cli.audit", "audit_cmd", "Go / no-go before publishing."),
    "guard": ("incident.cli.guard", "guard_group", "Block keys at commit and push."),
    "demo": ("incident.cli.demo", "demo_cmd", "Run the response on a sample repo."),
    "sandbox": ("incident.cli.sandbox", "sandbox_cmd", "Serve the offline Stripe."),
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use, and that maps errors.

    Every IncidentError, Ctrl-C and unexpected exception becomes a short message on
    stderr and its ExitCode, whether the CLI runs from main() or from a test runner.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._available(name)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not self._available(name):
            return None
        module_name, attribute, _ = COMMANDS[name]
        module = importlib.import_module(module_name)
        command: click.Command = getattr(module, attribute)
        return command

    @staticmethod
    def _available(name: str) -> bool:
        return importlib.util.find_spec(COMMANDS[name][0]) is not None

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug"))
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException):
            raise
        except (click.exceptions.Abort, KeyboardInterrupt):
            err.print(_stopped_message())
            ctx.exit(ExitCode.REFUSED)
        except IncidentError as exc:
            err.print(f"Error: {escape(exc.message)}")
            if exc.hint:
                err.print(f"  {escape(exc.hint)}")
            if debug:
                logger.exception("details")
            ctx.exit(exc.exit_code)
        except Exception as exc:
            err.print(f"Internal error: {escape(redact_text(repr(exc)))}")
            err.print("  Run again with --debug and report the traceback.")
            if debug:
                logger.exception("traceback")
            ctx.exit(ExitCode.INTERNAL)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="incident")
@click.option("-v", "--verbose", count=True, help="Log decisions and outside calls.")
@click.option("--debug", is_flag=True, help="Log everything; show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, debug: bool) -> None:
    """Respond to a Stripe secret key committed to git.

    Find every key in the whole history (scan), rotate it through Stripe (roll),
    rewrite history without it (purge), and keep the incident record (report).
    """
    configure_logging(verbose, debug)
    ctx.obj = {"debug": debug}


# How to continue the command that is running, once it has a journal to continue
# from; set by the commands, read when the operator stops them.
_resume_hint: list[str] = []


def set_resume_hint(command: str) -> None:
    """Tell a Ctrl-C how to pick up this run: the exact command to resume it."""
    _resume_hint[:] = [command]


def _stopped_message() -> str:
    if not _resume_hint:
        return "Stopped."
    return ("Stopped. Everything done so far is in the journal; nothing is lost or "
            f"done twice if you continue with: {escape(_resume_hint[0])}")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; exit with the command's ExitCode."""
    try:
        code = cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        err.print(_stopped_message())
        sys.exit(ExitCode.REFUSED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(int(code or 0))


def finish(code: ExitCode | int) -> None:
    """End the current command with code (works under main() and test runners)."""
    click.get_current_context().exit(int(code))
