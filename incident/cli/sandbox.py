"""``incident sandbox``: serve the offline Stripe-compatible API on 127.0.0.1."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click
from rich.markup import escape

from incident.cli.console import err, out
from incident.detect import scan_bytes
from incident.errors import ExitCode, UsageError
from incident.fsutil import write_secret_file
from incident.sandbox import SandboxHandle, start_sandbox
from incident.sandbox.state import redacted_token


@click.command("sandbox")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (keep it on loopback).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=12111,
    show_default=True,
    help="Port to listen on; 0 picks a free one.",
)
@click.option(
    "--seed-from",
    "seed_repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="REPO",
    help="Seed the account with every key found in REPO's history.",
)
@click.option(
    "--seed-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Seed with the keys found in FILE.",
)
@click.option(
    "--operator-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Mint a live operator key and write it to FILE (0600), for STRIPE_API_KEY.",
)
def sandbox_cmd(
    host: str,
    port: int,
    seed_repo: Path | None,
    seed_key_file: Path | None,
    operator_key_file: Path | None,
) -> int:
    """Serve an offline Stripe API for the demo and for trying `incident roll`.

    It knows the API keys it was seeded with and implements /v1/account and the
    v2 API keys endpoints. Point the tool at it with
    INCIDENT_STRIPE_API_BASE=URL. Press Ctrl-C to stop.
    """
    secrets = _seed_values(seed_repo, seed_key_file)
    if host not in {"127.0.0.1", "localhost", "::1"}:
        err.print(
            f"[bold yellow]Warning:[/] listening on {escape(host)} lets other machines "
            "use the seeded keys; the tool only talks to it over http on 127.0.0.1."
        )
    if (seed_repo or seed_key_file) and not secrets:
        err.print("[bold yellow]Warning:[/] no Stripe key found to seed with; the "
                  "sandbox knows only the operator key it mints.")
    try:
        handle = start_sandbox(secrets, host=host, port=port)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            "Another program (perhaps another sandbox) uses that port: pass "
            "--port 0 to pick a free one, or stop the other one.",
        ) from None
    # `kill` and container stops send SIGTERM: stop as cleanly as on Ctrl-C.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        _announce(handle, operator_key_file)
        threading.Event().wait()
    except KeyboardInterrupt:
        err.print("Sandbox stopped.")
    finally:
        handle.stop()
        signal.signal(signal.SIGTERM, previous)
    return ExitCode.OK


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _seed_values(seed_repo: Path | None, seed_key_file: Path | None) -> list[str]:
    values: list[str] = []
    if seed_repo is not None:
        from incident.history import scan_repository

        values += [f.secret for f in scan_repository(seed_repo).findings]
    if seed_key_file is not None:
        try:
            data = seed_key_file.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {seed_key_file}: {exc.strerror}") from None
        values += [m.secret for m in scan_bytes(data) if m.ignored is None]
    return values


def _announce(handle: SandboxHandle, operator_key_file: Path | None) -> None:
    err.print(
        f"Offline Stripe sandbox at {escape(handle.url)} "
        f"(account {handle.state.account_id}). Use it with:"
    )
    err.print(f"  export INCIDENT_STRIPE_API_BASE={escape(handle.url)}")
    for key in sorted(handle.state.keys.values(), key=lambda k: k.created):
        mode = "live" if key.livemode else "test"
        err.print(f"  {key.id}  {escape(redacted_token(key.secret))}  {mode}")
    if operator_key_file is not None:
        write_secret_file(operator_key_file, handle.add_operator_key("live") + "\n")
        err.print(
            f"Operator key written to {escape(str(operator_key_file))} (0600): "
            f"export STRIPE_API_KEY=$(cat {escape(str(operator_key_file))})"
        )
    sys.stderr.flush()
    # The URL alone on stdout, last: a script can read the first line and go on.
    out.print(handle.url)
    sys.stdout.flush()
