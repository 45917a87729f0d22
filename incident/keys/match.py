"""Which of the account's API key objects is the leaked key.

Stripe never returns a live secret again, so a live key is matched by what the API
does show: ``secret_token_redacted`` (prefix and last four characters) and
``livemode``. Test-mode objects carry their token, so those match exactly.
"""

from __future__ import annotations

import secrets
from typing import Any

from incident.detect.rules import Mode
from incident.keys.model import LeakedKey

DASHBOARD_STEPS = (
    "Open https://dashboard.stripe.com/apikeys, find the key ending in {last4}, "
    "choose Rotate key (expire now) and store the new key where your app reads it."
)


def match_key_objects(
    key: LeakedKey, objects: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Key objects that may be the leaked key: exact token (test mode) or redacted form.

    A test-mode object carries its token, so it matches exactly; otherwise the prefix
    (kind and mode) and the last four characters of ``secret_token_redacted`` must
    agree, and ``livemode`` must agree with the key's mode.
    """
    exact: list[dict[str, Any]] = []
    loose: list[dict[str, Any]] = []
    prefix, last4 = key.secret[:8], key.secret[-4:]
    for obj in objects:
        if obj.get("type") != "secret_key":
            continue
        if bool(obj.get("livemode")) != (key.mode is Mode.LIVE):
            continue
        secret_key = obj.get("secret_key") or {}
        token = secret_key.get("token")
        if token:
            if secrets.compare_digest(str(token), key.secret):
                exact.append(obj)
            continue
        shown = str(secret_key.get("secret_token_redacted") or "")
        if shown.startswith(prefix) and shown.endswith(last4):
            loose.append(obj)
    return exact or loose


def pick_key_object(
    key: LeakedKey, objects: list[dict[str, Any]]
) -> dict[str, Any] | list[dict[str, Any]]:
    """The one active object that is the leaked key, else every candidate.

    An empty list means not found; several active ones are ambiguous; only expired
    ones mean the key is already revoked.
    """
    candidates = match_key_objects(key, objects)
    active = [c for c in candidates if c.get("status") == "active"]
    if len(active) == 1:
        return active[0]
    return active or candidates
