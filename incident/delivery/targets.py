"""Where a new key goes: a file, one variable of a dotenv file, AWS Secrets Manager,
or a command's stdin. Each target writes, then reads back or checks, so "delivered"
means confirmed.
"""

from __future__ import annotations

import logging
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from incident.errors import UsageError
from incident.fsutil import write_atomic, write_secret_file
from incident.redact import fingerprint, redact_text

logger = logging.getLogger(__name__)

EXEC_TIMEOUT_SECONDS = 120
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DeliveryError(Exception):
    """A target could not take or confirm the secret; the message holds no secret."""


class Target(Protocol):
    """One place a new secret is delivered to."""

    def describe(self) -> str:
        """A human label for output and the journal (never the secret)."""
        ...

    def deliver(self, secret: str) -> None:
        """Store secret and confirm it arrived, or raise DeliveryError."""
        ...


@dataclass(frozen=True)
class FileTarget:
    """``file:PATH``: the secret alone in a 0600 file, written atomically."""

    path: Path

    def describe(self) -> str:
        return f"file:{self.path}"

    def deliver(self, secret: str) -> None:
        try:
            write_secret_file(self.path, secret + "\n")
            stored = self.path.read_text().strip()
        except OSError as exc:
            raise DeliveryError(f"cannot write {self.path}: {exc.strerror}") from None
        if fingerprint(stored) != fingerprint(secret):
            raise DeliveryError(f"{self.path} does not hold the new key after writing")


@dataclass(frozen=True)
class EnvFileTarget:
    """``env-file:PATH:VAR``: set one variable in a dotenv file, keep other bytes."""

    path: Path
    variable: str

    def describe(self) -> str:
        return f"env-file:{self.path}:{self.variable}"

    def deliver(self, secret: str) -> None:
        try:
            original = self.path.read_bytes() if self.path.exists() else b""
            mode = self.path.stat().st_mode & 0o777 if self.path.exists() else 0o600
            updated = set_env_variable(original, self.variable, secret)
            write_atomic(self.path, updated, mode=mode)
            if mode & 0o077:
                # The file's mode is the application's business (it may run as
                # another user), so it is kept; but the operator must know.
                logger.warning("%s is readable by other users (mode %o) and now "
                               "holds the new key: tighten it if you can "
                               "(chmod 600 %s)", self.path, mode, self.path)
            stored = read_env_variable(self.path.read_bytes(), self.variable)
        except OSError as exc:
            raise DeliveryError(f"cannot update {self.path}: {exc.strerror}") from None
        if stored is None or fingerprint(stored) != fingerprint(secret):
            raise DeliveryError(
                f"{self.path} does not hold {self.variable} after writing"
            )


@dataclass(frozen=True)
class AwsSecretsManagerTarget:
    """``aws-secretsmanager:SECRET_ID``: a new secret version (created if absent).

    boto3 reads credentials, region and ``AWS_ENDPOINT_URL`` from the environment.
    """

    secret_id: str

    def describe(self) -> str:
        return f"aws-secretsmanager:{self.secret_id}"

    def deliver(self, secret: str) -> None:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            client = boto3.client("secretsmanager")
            try:
                client.put_secret_value(SecretId=self.secret_id, SecretString=secret)
            except ClientError as exc:
                if (
                    exc.response.get("Error", {}).get("Code")
                    != "ResourceNotFoundException"
                ):
                    raise
                client.create_secret(Name=self.secret_id, SecretString=secret)
            stored = client.get_secret_value(SecretId=self.secret_id)["SecretString"]
        except (BotoCoreError, ClientError) as exc:
            raise DeliveryError(
                f"AWS Secrets Manager refused {self.secret_id}: {redact_text(str(exc))}"
            ) from None
        if fingerprint(stored) != fingerprint(secret):
            raise DeliveryError(
                f"{self.secret_id} does not hold the new key after writing"
            )


@dataclass(frozen=True)
class ExecTarget:
    """``exec:COMMAND``: run COMMAND through /bin/sh with the secret on its stdin.

    For vault, 1Password, kubectl and the like; exit status 0 counts as delivered.
    """

    command: str

    def describe(self) -> str:
        return f"exec:{self.command}"

    def deliver(self, secret: str) -> None:
        try:
            result = subprocess.run(
                ["/bin/sh", "-c", self.command],
                input=(secret + "\n").encode(),
                capture_output=True,
                timeout=EXEC_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DeliveryError(
                f"{shlex.quote(self.command)} did not finish in {EXEC_TIMEOUT_SECONDS}s"
            ) from None
        if result.returncode != 0:
            tail = redact_text(result.stderr.decode("utf-8", "replace").strip())[-300:]
            raise DeliveryError(
                f"{self.command!r} exited with {result.returncode}: "
                f"{tail or 'no output'}"
            )


def parse_target(spec: str) -> Target:
    """Turn a ``--deliver`` value into a Target.

    Raises:
        UsageError: the spec names no known target or misses a part.
    """
    kind, _, rest = spec.partition(":")
    if kind == "file" and rest:
        return FileTarget(Path(rest).expanduser())
    if kind == "env-file" and rest:
        path, _, variable = rest.rpartition(":")
        if path and _VAR_NAME.match(variable):
            return EnvFileTarget(Path(path).expanduser(), variable)
    if kind == "aws-secretsmanager" and rest:
        return AwsSecretsManagerTarget(rest)
    if kind == "exec" and rest.strip():
        return ExecTarget(rest)
    raise UsageError(
        f"cannot understand --deliver {spec!r}",
        "Use file:PATH, env-file:PATH:VAR, aws-secretsmanager:SECRET_ID or "
        "exec:COMMAND, e.g. --deliver env-file:.env:STRIPE_API_KEY",
    )


def anchor_target(spec: str, base: Path) -> str:
    """The same --deliver value with relative paths made absolute against base.

    Targets are journaled and used again on resume, maybe from another directory:
    a relative path would then deliver the new key somewhere else. An exec command
    is made to run in base. Placeholders ({fingerprint}, ...) are kept as they are.
    """
    kind, _, rest = spec.partition(":")
    if kind == "file" and rest:
        return f"file:{_absolute(rest, base)}"
    if kind == "env-file" and rest:
        path, _, variable = rest.rpartition(":")
        if path:
            return f"env-file:{_absolute(path, base)}:{variable}"
    if kind == "exec" and rest.strip():
        return f"exec:cd {shlex.quote(str(base))} && {rest}"
    return spec


def _absolute(path: str, base: Path) -> str:
    expanded = Path(path).expanduser()
    return str(expanded if expanded.is_absolute() else base / expanded)


def _env_line(variable: str) -> re.Pattern[bytes]:
    return re.compile(
        rb"^(?P<lead>[ \t]*(?:export[ \t]+)?"
        + re.escape(variable.encode())
        + rb"[ \t]*=[ \t]*)(?P<value>[^\r\n]*)(?P<eol>\r?\n?)$",
        re.MULTILINE,
    )


def set_env_variable(data: bytes, variable: str, value: str) -> bytes:
    """Replace the value of every assignment of variable; append one if there is none.

    The quoting style of an existing value (none, single, double) is kept; every
    other byte of the file, line endings included, is left as it was.
    """
    pattern = _env_line(variable)
    encoded = value.encode()

    def replace(match: re.Match[bytes]) -> bytes:
        old = match.group("value").strip()
        quote = old[:1] if old[:1] in (b"'", b'"') else b""
        return match.group("lead") + quote + encoded + quote + match.group("eol")

    updated, count = pattern.subn(replace, data)
    if count:
        return updated
    newline = b"\r\n" if b"\r\n" in data else b"\n"
    if data and not data.endswith(b"\n"):
        data += newline
    return data + variable.encode() + b"=" + encoded + newline


def read_env_variable(data: bytes, variable: str) -> str | None:
    """The last value assigned to variable in a dotenv file, unquoted."""
    matches = list(_env_line(variable).finditer(data))
    if not matches:
        return None
    raw = matches[-1].group("value").strip()
    if len(raw) >= 2 and raw[:1] == raw[-1:] and raw[:1] in (b"'", b'"'):
        raw = raw[1:-1]
    return raw.decode("utf-8", "replace")
