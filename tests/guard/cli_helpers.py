"""Run the CLI in tests and show both streams when the exit code is wrong."""

from __future__ import annotations

from click.testing import CliRunner, Result

from incident.cli import cli


def invoke(args: list[str], expected: int, stdin: str | None = None) -> Result:
    """Run `incident ARGS` and check the exit code, printing both streams if wrong."""
    result = CliRunner().invoke(cli, args, input=stdin)
    assert result.exit_code == expected, (
        f"exit {result.exit_code}, wanted {expected}\nstdout:\n{result.stdout}\n"
        f"stderr:\n{result.stderr}\nexception: {result.exception!r}"
    )
    return result


def assert_no_secret(result: Result, *secrets: str) -> None:
    """No full secret in either stream."""
    for secret in secrets:
        assert secret not in result.stdout
        assert secret not in result.stderr
