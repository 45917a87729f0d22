"""Key rolling tests: only loopback Stripe clients, AWS on a loopback moto server."""

from tests.sandbox.fixtures import (
    live_key,
    moto_server,
    sandbox,
    test_key,
)

__all__ = ["live_key", "moto_server", "sandbox", "test_key"]
