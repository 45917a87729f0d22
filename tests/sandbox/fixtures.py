"""Fixtures shared by the sandbox, keys and roll CLI tests.

The guard that keeps every Stripe client on loopback is autouse in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from incident.sandbox import SandboxHandle, start_sandbox
from tests.helpers.gitrepo import fake_key

LIVE_PREFIX = "sk_" + "live_"
TEST_PREFIX = "sk_" + "test_"
RESTRICTED_LIVE_PREFIX = "rk_" + "live_"


@pytest.fixture
def live_key() -> str:
    """A leaked live secret key (fake, built at run time)."""
    return fake_key(LIVE_PREFIX, seed="leaked-live")


@pytest.fixture
def test_key() -> str:
    """A leaked test-mode secret key."""
    return fake_key(TEST_PREFIX, seed="leaked-test")


@pytest.fixture
def sandbox(live_key: str, test_key: str) -> Iterator[SandboxHandle]:
    """A sandbox seeded with the leaked live and test keys and two bystanders."""
    bystanders = [
        fake_key(LIVE_PREFIX, seed="other-live"),
        fake_key(TEST_PREFIX, seed="other-test"),
    ]
    with start_sandbox([live_key, test_key, *bystanders]) as handle:
        yield handle


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto server on 127.0.0.1 with boto3 pointed at it through AWS_ENDPOINT_URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    try:
        yield url
    finally:
        server.stop()
