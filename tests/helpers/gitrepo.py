"""Build real git repositories for tests, with the git binary and fixed dates."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from incident.sample import fake_secret

# Fake keys are assembled at run time so that no key-shaped literal is committed.
LIVE = "sk_" + "live_"
TEST = "sk_" + "test_"


def fake_key(prefix: str = LIVE, seed: str = "T3stOnly", length: int = 99) -> str:
    """Return a key-shaped fake secret with a non-repeating, non-sequential body."""
    return fake_secret(prefix, f"tests:{seed}", length)


class GitRepo:
    """A repository driven through the git binary, with deterministic identities.

    Each commit gets a date one hour after the previous one, starting at
    2024-01-01T00:00:00Z, so timelines can be asserted exactly.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.clock = 1_704_067_200  # 2024-01-01T00:00:00Z

    @classmethod
    def init(cls, path: Path, *, bare: bool = False, branch: str = "main") -> GitRepo:
        path.mkdir(parents=True, exist_ok=True)
        args = ["init", "-q", "-b", branch]
        if bare:
            args.append("--bare")
        subprocess.run(["git", *args, str(path)], check=True)
        repo = cls(path)
        repo.git("config", "user.name", "Dana Dev")
        repo.git("config", "user.email", "dana@example.com")
        repo.git("config", "commit.gpgsign", "false")
        return repo

    def env(self) -> dict[str, str]:
        date = f"@{self.clock} +0000"
        return {
            **os.environ,
            "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_DATE": date,
        }

    def git(self, *args: str | bytes, input: bytes | None = None) -> str:
        """Run git in the repository and return stdout as text."""
        result = subprocess.run(
            ["git", "-C", str(self.path), *args],
            check=True,
            capture_output=True,
            input=input,
            env=self.env(),
        )
        return result.stdout.decode("utf-8", "surrogateescape").strip()

    def tick(self) -> None:
        self.clock += 3600

    def write(self, files: dict[str | bytes, str | bytes | None]) -> None:
        """Write (or, for None, delete) files in the work tree and stage them."""
        for name, content in files.items():
            raw = os.fsencode(name) if isinstance(name, str) else name
            target = os.path.join(os.fsencode(self.path), raw)
            if content is None:
                self.git(
                    "rm", "-q", "--cached", "--ignore-unmatch", "--", os.fsdecode(raw)
                )
                if os.path.exists(target):
                    os.remove(target)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            data = content.encode() if isinstance(content, str) else content
            with open(target, "wb") as handle:
                handle.write(data)
            self.git("add", "--", os.fsdecode(raw))

    def commit(
        self,
        files: dict[str | bytes, str | bytes | None] | None = None,
        message: str = "change",
    ) -> str:
        """Write files, commit them with the next fixed date, and return the sha."""
        self.tick()
        if files:
            self.write(files)
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def branch(self, name: str, start: str = "HEAD") -> None:
        self.git("branch", name, start)

    def checkout(self, name: str) -> None:
        self.git("checkout", "-q", name)

    def tag(self, name: str, message: str | None = None, target: str = "HEAD") -> None:
        self.tick()
        if message is None:
            self.git("tag", name, target)
        else:
            self.git("tag", "-a", name, "-m", message, target)
