"""The offline Stripe sandbox: start it in-process, seed it, inject faults.

with start_sandbox([leaked_key]) as sandbox:
    operator = sandbox.add_operator_key("live")
    ...  # point the tool at sandbox.url
    assert len(sandbox.state.rotations_of(key_id)) == 1
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import TracebackType

from incident.detect.rules import KEY_PATTERN
from incident.sandbox.server import SandboxServer, serve_in_thread
from incident.sandbox.state import (
    FAULT_KINDS,
    Fault,
    Rotation,
    SandboxKey,
    SandboxState,
    derive_account_id,
    derive_key_id,
    mint_secret,
    redacted_token,
)

logger = logging.getLogger(__name__)

__all__ = [
    "FAULT_KINDS",
    "Fault",
    "Rotation",
    "SandboxHandle",
    "SandboxKey",
    "SandboxState",
    "derive_key_id",
    "seed_state",
    "start_sandbox",
]


def seed_state(secrets: list[str]) -> SandboxState:
    """Build an account holding each API key in secrets (ids derived from values).

    Webhook secrets are skipped (they are not API keys); duplicates count once.
    """
    keys = sorted({s for s in secrets if not s.startswith("whsec_")})
    state = SandboxState(derive_account_id(keys))
    for index, secret in enumerate(keys):
        # Distinct creation times keep list order stable across runs.
        state.add_key(
            secret, name=f"seeded key {index + 1}", created=1_700_000_000 + index
        )
    return state


@dataclass
class SandboxHandle:
    """A running sandbox: its URL, its state, and how to stop it."""

    state: SandboxState
    server: SandboxServer = field(repr=False)
    url: str = ""

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()

    def inject(
        self,
        kind: str,
        *,
        method: str | None = None,
        path_contains: str | None = None,
        times: int = 1,
        delay: float = 0.0,
    ) -> Fault:
        """Queue a fault (see incident.sandbox.state.FAULT_KINDS)."""
        return self.state.inject(
            kind, method=method, path_contains=path_contains, times=times, delay=delay
        )

    def add_operator_key(self, mode: str = "live") -> str:
        """Mint and register a secret key to act as the operator's STRIPE_API_KEY."""
        secret = mint_secret("sk_" + ("live_" if mode == "live" else "test_"))
        self.state.add_key(secret, name=f"operator {mode} key")
        return secret

    def key_id_for(self, secret: str) -> str | None:
        """The id of the key object that secret authenticates as, if any."""
        key = self.state.key_for_secret(secret)
        return key.id if key else None

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_sandbox(
    secrets: list[str],
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    state: SandboxState | None = None,
) -> SandboxHandle:
    """Seed an account with secrets and serve it on host:port (0 picks a free port)."""
    for secret in secrets:
        if not KEY_PATTERN.fullmatch(secret.encode()):
            raise ValueError("seed values must be Stripe keys (sk_/rk_/pk_/whsec_)")
    state = state or seed_state(secrets)
    server, _ = serve_in_thread(state, host, port)
    bound_host, bound_port = server.server_address[:2]
    url = f"http://{bound_host}:{bound_port}"
    logger.info("sandbox serving %d keys at %s", len(state.keys), url)
    return SandboxHandle(state=state, server=server, url=url)


def describe_key(key: SandboxKey) -> str:
    """One line naming a seeded key without its value."""
    mode = "live" if key.livemode else "test"
    return f"{key.id}  {redacted_token(key.secret)}  {mode}"
