"""Deliver one new secret to every target, with retries, and never lose it.

If no target confirms after the retries, the secret goes to a 0600 emergency file
in the incident directory, and the outcome says where.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from incident.delivery.targets import DeliveryError, Target
from incident.fsutil import write_secret_file

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryOutcome:
    """What became of one secret.

    Attributes:
        delivered: descriptions of the targets that confirmed the secret.
        failed: (description, reason) for each target that never did.
        emergency_file: where the secret was written because nothing else took it
            (or because no target was given), else None.
    """

    delivered: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    emergency_file: Path | None = None

    @property
    def is_safe(self) -> bool:
        """True when the secret is stored somewhere (a target or the emergency file)."""
        return bool(self.delivered) or self.emergency_file is not None


def deliver_secret(
    secret: str,
    targets: Sequence[Target],
    emergency_path: Path,
    *,
    attempts: int = 3,
    base_delay: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryOutcome:
    """Send secret to each target, retrying failures; fall back to emergency_path.

    Args:
        secret: the new key; it is never logged.
        targets: where it should go; may be empty (then only the emergency file).
        emergency_path: a path inside the incident directory, written 0600.
        attempts: tries per target, with exponential backoff and jitter between.
    """
    delivered: list[str] = []
    failed: list[tuple[str, str]] = []
    for target in targets:
        reason = _deliver_with_retries(secret, target, attempts, base_delay, sleep)
        if reason is None:
            delivered.append(target.describe())
            logger.info("delivered the new key to %s", target.describe())
        else:
            failed.append((target.describe(), reason))
            logger.warning("could not deliver to %s: %s", target.describe(), reason)
    if delivered:
        return DeliveryOutcome(delivered, failed, None)

    # Nothing took the key: it exists only in this process now. Keep it on disk.
    write_secret_file(emergency_path, secret + "\n")
    logger.warning("new key written to emergency file %s", emergency_path)
    return DeliveryOutcome(delivered, failed, emergency_path)


def _deliver_with_retries(
    secret: str,
    target: Target,
    attempts: int,
    base_delay: float,
    sleep: Callable[[float], None],
) -> str | None:
    reason = "not attempted"
    for attempt in range(1, attempts + 1):
        try:
            target.deliver(secret)
            return None
        except DeliveryError as exc:
            reason = str(exc)
        except OSError as exc:
            reason = f"{type(exc).__name__}: {exc.strerror or exc}"
        if attempt < attempts:
            sleep(base_delay * 2 ** (attempt - 1) * (0.5 + random.random()))
    return reason
