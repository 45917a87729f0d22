"""Run the CLI in-process and show both streams when an expectation fails."""

from __future__ import annotations

from click.testing import CliRunner, Result

from incident.cli import cli


def invoke(
    *args: str,
    exit_code: int | None = None,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> Result:
    """Invoke ``incident ARGS`` and check the exit code if one is given."""
    runner = CliRunner()
    result = runner.invoke(
        cli, list(args), input=input, env=env, catch_exceptions=False
    )
    code = result.exit_code
    if exit_code is not None:
        assert code == exit_code, (
            f"exit {code}, expected {exit_code}\n--- stdout\n{result.stdout}"
            f"\n--- stderr\n{result.stderr}"
        )
    return result
