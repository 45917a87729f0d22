"""Rolling leaked Stripe keys; the only package that imports ``stripe``.

Public API (the ``respond`` command calls it):

    results = roll_keys([LeakedKey.from_finding(f) for f in findings],
                        RollOptions(api_key=..., deliver=("env-file:.env:STRIPE_KEY",)),
                        journal)
"""

from incident.keys.client import KeyService, StripeKeyService
from incident.keys.match import match_key_objects
from incident.keys.model import (
    MAX_GRACE_MINUTES,
    LeakedKey,
    Liveness,
    RollOptions,
    RollResult,
    RollStatus,
)
from incident.keys.roll import check_roll_options, roll_keys
from incident.keys.webhook import manual_step_id, webhook_roll_steps

__all__ = [
    "MAX_GRACE_MINUTES",
    "KeyService",
    "LeakedKey",
    "Liveness",
    "RollOptions",
    "RollResult",
    "RollStatus",
    "StripeKeyService",
    "check_roll_options",
    "manual_step_id",
    "match_key_objects",
    "roll_keys",
    "webhook_roll_steps",
]
