"""Sandbox tests: only loopback Stripe clients."""

from tests.sandbox.fixtures import live_key, sandbox, test_key

__all__ = ["live_key", "sandbox", "test_key"]
