"""A leaked repository with a bare remote, and the sandbox that knows its keys."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from incident.detect.rules import is_key
from incident.history import scan_repository
from incident.sample import build_sample_repo, publish_sample
from incident.sandbox import SandboxHandle, derive_key_id, start_sandbox
from tests.cli.helpers import invoke
from tests.rewrite.conftest import build_story


@dataclass
class World:
    """Everything a response touches, and what it should find."""

    repo: Path
    origin: Path
    sandbox: SandboxHandle
    operator_key: str
    secrets: list[str]
    new_keys: Path
    incidents: Path

    @property
    def live_api_keys(self) -> list[str]:
        return [s for s in self.secrets
                if s.startswith(("sk_" + "live_", "rk_" + "live_"))]

    def env(self) -> dict[str, str]:
        return {"STRIPE_API_KEY": self.operator_key,
                "INCIDENT_STRIPE_API_BASE": self.sandbox.url}

    def respond_args(self, *extra: str) -> list[str]:
        return ["respond", str(self.repo), "--yes", "--incident-dir",
                str(self.incidents), "--deliver",
                f"file:{self.new_keys}/{{fingerprint}}.key", *extra]

    def rotations(self, secret: str) -> int:
        return len(self.sandbox.state.rotations_of(derive_key_id(secret)))

    def only_incident(self) -> Path:
        [directory] = [p for p in self.incidents.iterdir() if p.is_dir()]
        return directory


def git(path: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(path), *args], check=True,
                          capture_output=True, text=True).stdout


def make_world(tmp_path: Path, repo: Path) -> Iterator[World]:
    publish_sample(repo, tmp_path / "origin.git")
    secrets = [f.secret for f in scan_repository(repo).findings]
    api_keys = [s for s in secrets if is_key(s) and not s.startswith("whsec_")]
    with start_sandbox(api_keys) as sandbox:
        yield World(repo=repo, origin=tmp_path / "origin.git", sandbox=sandbox,
                    operator_key=sandbox.add_operator_key("live"), secrets=secrets,
                    new_keys=tmp_path / "new-keys", incidents=tmp_path / "incidents")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """The bundled sample: two live keys, a webhook secret, a test key in base64."""
    sample = build_sample_repo(tmp_path / "payments")
    yield from make_world(tmp_path, sample.path)


@pytest.fixture
def story_world(tmp_path: Path) -> Iterator[World]:
    """Keys in every hiding place: encodings, archives, messages, notes, stash."""
    story = build_story(tmp_path / "story")
    yield from make_world(tmp_path, story.repo.path)


def respond(world: World, *extra: str, exit_code: int = 0) -> str:
    result = invoke(*world.respond_args(*extra), env=world.env(), exit_code=exit_code)
    return result.stdout + result.stderr
