"""Waiting for Stripe to reject an expired key: expiry can take effect late."""

from __future__ import annotations

import time
from collections.abc import Callable

from incident.journal import utc_now
from incident.keys.client import KeyService
from incident.keys.model import Liveness

FIRST_DELAY = 0.1
MAX_DELAY = 5.0


def wait_until_rejected(
    service: KeyService,
    secret: str,
    timeout: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """Poll a harmless read with secret, backing off, until Stripe rejects it.

    Returns:
        The UTC time the key was first seen rejected, or None if it was still
        accepted when timeout seconds had passed.
    """
    deadline = time.monotonic() + timeout
    delay = FIRST_DELAY
    while True:
        if service.check_liveness(secret) is Liveness.REVOKED:
            return utc_now()
        if time.monotonic() + delay > deadline:
            return None
        sleep(delay)
        delay = min(delay * 2, MAX_DELAY)
