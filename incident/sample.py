"""Build the bundled sample incident repository, deterministically.

A small payments app whose history tells the usual story: a live key hard-coded in
a reporting client, another pasted into ``.env.production`` and later "removed"
(it stays in history, on a release tag and a feature branch), a webhook secret in a
test fixture, and a test-mode key in a Kubernetes Secret. Every key is fake, made
here from a seed: no key-shaped literal lives in this source tree.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from incident.errors import UsageError

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_START = 1_709_280_000  # 2024-03-01T08:00:00Z


def fake_secret(prefix: str, seed: str, length: int = 99) -> str:
    """A key-shaped fake: prefix plus length characters derived from seed."""
    digest = b""
    counter = 0
    while len(digest) < length:
        digest += hashlib.sha256(f"incident-sample:{seed}:{counter}".encode()).digest()
        counter += 1
    return prefix + "".join(_ALPHABET[b % 62] for b in digest[:length])


@dataclass(frozen=True)
class SampleRepo:
    """The built repository and the fake secrets planted in it (by role)."""

    path: Path
    secrets: dict[str, str]


def sample_secrets() -> dict[str, str]:
    """The planted fakes: hard-coded live key, removed live key, webhook, test key."""
    return {
        "hardcoded_live": fake_secret("sk_" + "live_", "reporting-client"),
        "removed_live": fake_secret("sk_" + "live_", "env-production"),
        "webhook": "whsec_" + fake_secret("", "webhook-fixture", 32),
        "k8s_test": fake_secret("rk_" + "test_", "k8s-secret"),
    }


CONFIG_PY = '''"""Configuration for the payments service, read from the environment."""

import os


class ConfigError(RuntimeError):
    """A required setting is missing."""


def stripe_secret_key() -> str:
    try:
        return os.environ["STRIPE_SECRET_KEY"]
    except KeyError:
        raise ConfigError(
            "STRIPE_SECRET_KEY is not set: export it or add it to .env"
        ) from None
'''

APP_PY = '''"""Payments service: create charges through Stripe."""

import stripe

from payments_service.config import stripe_secret_key


def client() -> stripe.StripeClient:
    return stripe.StripeClient(stripe_secret_key())
'''

CLIENT_HARDCODED = '''"""Nightly revenue report."""

import stripe

# TODO: move to the environment before launch
STRIPE_KEY = "{key}"


def client() -> stripe.StripeClient:
    return stripe.StripeClient(STRIPE_KEY)
'''

CLIENT_FROM_ENV = '''"""Nightly revenue report."""

import os

import stripe


def client() -> stripe.StripeClient:
    key = os.environ.get("STRIPE_SECRET_KEY")
    if not key:
        raise RuntimeError("STRIPE_SECRET_KEY is not set")
    return stripe.StripeClient(key)
'''


class _Builder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.clock = _START

    def git(self, *args: str) -> str:
        env = {
            **os.environ,
            "GIT_AUTHOR_DATE": f"@{self.clock} +0000",
            "GIT_COMMITTER_DATE": f"@{self.clock} +0000",
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        result = subprocess.run(["git", "-C", str(self.path), *args], env=env,
                                capture_output=True, text=True, check=True)
        return result.stdout.strip()

    def commit(self, files: dict[str, str | None], message: str, who: str,
               hours: int = 24) -> str:
        self.clock += hours * 3600
        for name, content in files.items():
            target = self.path / name
            if content is None:
                self.git("rm", "-q", "--", name)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            self.git("add", "--", name)
        name, email = who.split("|")
        self.git("-c", f"user.name={name}", "-c", f"user.email={email}",
                 "commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")


ALICE = "Alice Payments|alice@payments.example"
BOB = "Bob Reports|bob@payments.example"
CAROL = "Carol Ops|carol@payments.example"


def build_sample_repo(path: Path) -> SampleRepo:
    """Create the sample repository at path (which must not exist or be empty).

    Raises:
        UsageError: path exists and is not an empty folder.
    """
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        raise UsageError(f"{path} already exists and is not empty",
                         "Give a new folder for the sample repository.")
    path.mkdir(parents=True, exist_ok=True)
    keys = sample_secrets()
    b = _Builder(path)
    b.git("init", "-q", "-b", "main")
    b.git("config", "commit.gpgsign", "false")
    b.git("config", "tag.gpgsign", "false")
    # A fresh machine may have no git identity; the tag needs one.
    b.git("config", "user.name", "Carol Ops")
    b.git("config", "user.email", "carol@payments.example")

    b.commit({
        "README.md": "# payments\n\nCharges and nightly reports.\n",
        ".gitignore": ".env\n__pycache__/\n",
        "payments_service/__init__.py": "",
        "payments_service/config.py": CONFIG_PY,
        "payments_service/app.py": APP_PY,
        ".env.example": "STRIPE_SECRET_KEY=sk_" + "live_...\n",
    }, "Payments service reading its key from the environment", ALICE)
    b.commit({
        "reporting_service/__init__.py": "",
        "reporting_service/stripe_client.py": CLIENT_HARDCODED.format(
            key=keys["hardcoded_live"]),
    }, "Add nightly revenue report", BOB)
    b.commit({
        ".env.production": f"STRIPE_SECRET_KEY={keys['removed_live']}\n"
                           "DATABASE_URL=postgres://payments@db/payments\n",
    }, "Production settings for the deploy script", CAROL)
    b.clock += 3600
    b.git("tag", "-a", "v1.0.0", "-m", "Release 1.0.0")

    b.git("checkout", "-q", "-b", "feature/webhooks")
    b.commit({
        "payments_service/tests/fixtures/webhook.json":
            '{\n  "endpoint": "https://payments.example/hooks",\n'
            f'  "signing_secret": "{keys["webhook"]}"\n}}\n',
    }, "Webhook handler fixture", ALICE, hours=6)
    secret_b64 = base64.b64encode(keys["k8s_test"].encode()).decode()
    b.commit({
        "deploy/k8s/stripe-secret.yaml":
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: stripe\n"
            f"type: Opaque\ndata:\n  STRIPE_SECRET_KEY: {secret_b64}\n",
    }, "Kubernetes secret for staging", CAROL, hours=6)

    b.git("checkout", "-q", "main")
    b.commit({".env.production": None},
             "Remove production settings from the repository", CAROL, hours=30)
    b.commit({"README.md": "# payments\n\nCharges and nightly reports.\n\n"
                           "Set STRIPE_SECRET_KEY in the environment.\n"},
             "Document configuration", ALICE)
    return SampleRepo(path=path, secrets=keys)


def apply_environment_fix(repo: Path) -> str:
    """Make the reporting client read its key from the environment; commit it."""
    b = _Builder(repo)
    b.clock = int(b.git("log", "-1", "--format=%ct")) + 3600
    return b.commit({"reporting_service/stripe_client.py": CLIENT_FROM_ENV},
                    "Read the reporting key from the environment", BOB, hours=1)


def publish_sample(repo: Path, bare: Path) -> None:
    """Give repo a bare remote holding every branch and tag, and fetch it back, so
    the leak has reached remote-tracking refs as it would have in real life."""
    steps = [
        [str(repo.parent), "init", "-q", "--bare", str(bare)],
        [str(repo), "remote", "add", "origin", str(bare)],
        [str(repo), "push", "-q", "origin", "--all"],
        [str(repo), "push", "-q", "origin", "--tags"],
        [str(repo), "fetch", "-q", "origin"],
    ]
    for where, *args in steps:
        subprocess.run(["git", "-C", where, *args], check=True, capture_output=True)
