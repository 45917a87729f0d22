"""Webhook signing secrets (``whsec_``): what Stripe allows, and the manual steps.

NOTE: Stripe's API can create, list, update and delete webhook endpoints
(``/v1/webhook_endpoints``), but the endpoint's ``secret`` is "only returned at
creation" (https://stripe.com/docs/api/webhook_endpoints), update edits only the URL,
events and status, and no call rolls the secret of an existing endpoint (the
``stripe`` package's WebhookEndpointService has create, retrieve, update, list and
delete only; v2 event destinations likewise return ``signing_secret`` on creation).
The API therefore cannot even tell which endpoint a leaked secret belongs to.
Rolling is a Dashboard action, so we print the steps and keep the step open in the
journal until the operator closes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from incident.keys.model import LeakedKey

if TYPE_CHECKING:
    from incident.journal import Journal


def manual_step_id(key: LeakedKey) -> str:
    """The id the operator uses to close the step (``incident step done ID``)."""
    return f"roll-webhook-secret-{key.fingerprint[:12]}"


def webhook_roll_steps(key: LeakedKey, journal: Journal | None) -> list[str]:
    """Exact Dashboard steps to roll the webhook signing secret that leaked."""
    last4 = key.secret[-4:]
    close = (
        journal.command("step", "done", manual_step_id(key))
        if journal is not None
        else f"incident step done {manual_step_id(key)}"
    )
    return [
        "Open the Stripe Dashboard at https://dashboard.stripe.com/webhooks "
        "(Developers > Webhooks; in Workbench: the Webhooks tab), in the mode the "
        "endpoint lives in (live unless the secret came from test mode).",
        f'Find the endpoint whose signing secret ends in "{last4}": open each '
        "endpoint, click Reveal under Signing secret and compare the last four "
        "characters.",
        "On that endpoint's page open the overflow menu (...) and choose Roll secret. "
        "Set the old secret to expire Now (or the shortest window your deploy needs), "
        "then confirm.",
        "Click Reveal, copy the new whsec_ secret and deploy it to the webhook "
        "handler (for example as STRIPE_WEBHOOK_SECRET); never commit it.",
        "Send a test event from the endpoint page and check the handler accepts "
        f"its signature, then close this step: {close}",
        "If the Dashboard is not available: create a new endpoint with the same URL "
        "and events through the API (the response carries its new secret), deploy "
        "that secret, then delete the old endpoint.",
    ]
