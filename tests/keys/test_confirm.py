"""Polling for the old key's rejection, with a fake KeyService."""

from __future__ import annotations

from typing import Any

from incident.keys import Liveness
from incident.keys.confirm import wait_until_rejected


class FakeService:
    """Answers liveness from a script; the other calls are not used here."""

    def __init__(self, answers: list[Liveness]) -> None:
        self.answers = answers
        self.calls = 0

    def check_liveness(self, secret: str) -> Liveness:
        self.calls += 1
        return self.answers.pop(0) if self.answers else Liveness.LIVE

    def list_keys(self, api_key: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def retrieve(self, api_key: str, key_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def rotate(
        self, api_key: str, key_id: str, body: dict[str, Any], idempotency_key: str
    ) -> dict[str, Any]:
        raise NotImplementedError

    def expire(self, api_key: str, key_id: str, idempotency_key: str) -> dict[str, Any]:
        raise NotImplementedError


def test_wait_until_rejected_backs_off_until_revoked() -> None:
    """Two live answers, then revoked: sleeps double, a time is returned."""
    service = FakeService([Liveness.LIVE, Liveness.LIVE, Liveness.REVOKED])
    sleeps: list[float] = []

    rejected_at = wait_until_rejected(service, "x", timeout=30, sleep=sleeps.append)

    assert rejected_at is not None and rejected_at.endswith("Z")
    assert sleeps == [0.1, 0.2]
    assert service.calls == 3


def test_wait_until_rejected_gives_up_at_timeout() -> None:
    """A key still accepted when time runs out gives None, not an endless loop."""
    service = FakeService([])

    assert wait_until_rejected(service, "x", timeout=0.5) is None
    assert 2 <= service.calls <= 4
