"""Isolation for every test: no user config, no colour, no real Stripe credentials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import stripe

from tests.helpers.gitrepo import GitRepo


@pytest.fixture(autouse=True)
def isolated_environment(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Point HOME and git's global config at an empty folder; drop Stripe keys."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    for name in ("STRIPE_API_KEY", "STRIPE_SECRET_KEY", "INCIDENT_STRIPE_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Test Operator\n\temail = operator@example.com\n"
        '[init]\n\tdefaultBranch = main\n[protocol "file"]\n\tallow = always\n'
    )
    yield


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    """An empty non-bare repository on branch main."""
    return GitRepo.init(tmp_path / "repo")


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly if any test builds a Stripe client for anything but 127.0.0.1."""
    original = stripe.StripeClient.__init__

    def guarded(self: stripe.StripeClient, api_key: str, **kwargs: Any) -> None:
        addresses = kwargs.get("base_addresses") or {}
        for name in ("api", "connect", "files", "meter_events"):
            host = urlsplit(addresses.get(name) or "https://api.stripe.com").hostname
            if host != "127.0.0.1":
                raise AssertionError(f"a test built a Stripe client for {host}")
        original(self, api_key, **kwargs)

    monkeypatch.setattr(stripe.StripeClient, "__init__", guarded)
