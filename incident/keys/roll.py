"""Roll leaked keys: check, find, rotate, deliver, confirm; resumable across crashes.

The order protects the new key. Before the rotate request is sent, the journal
records its idempotency key and the RSA private key is on disk (0600, in the
incident directory). If the process dies after Stripe applied the rotation, a re-run
re-sends the same request; Stripe (and the sandbox) replay the saved response, so the
same new key comes back and there is never a second rotation.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from incident.delivery import Target, deliver_secret, parse_target
from incident.detect.rules import KeyKind
from incident.errors import StripeApiError, UsageError
from incident.fsutil import write_secret_file
from incident.journal import Journal, utc_now
from incident.keys.client import (
    KeyAuthError,
    KeyService,
    StripeKeyService,
)
from incident.keys.confirm import wait_until_rejected
from incident.keys.crypto import (
    generate_private_key_pem,
    public_key_pem,
    reveal_secret,
)
from incident.keys.match import DASHBOARD_STEPS, pick_key_object
from incident.keys.model import (
    MAX_GRACE_MINUTES,
    LeakedKey,
    Liveness,
    RollOptions,
    RollResult,
    RollStatus,
)
from incident.keys.resume import (
    STEP,
    idempotency_key,
    plus_minutes,
    refuse_unfinished_elsewhere,
)
from incident.keys.webhook import manual_step_id, webhook_roll_steps
from incident.redact import fingerprint, redact

logger = logging.getLogger(__name__)

# When the leaked key itself authenticates the rotation, expiring it at once would
# lock us out of replaying the rotate response after a crash. Keep it alive this
# long, and expire it explicitly as soon as the new key is delivered.
SELF_AUTH_WINDOW_MINUTES = 10


def roll_keys(
    leaked: Sequence[LeakedKey],
    options: RollOptions,
    journal: Journal | None,
    *,
    service: KeyService | None = None,
) -> list[RollResult]:
    """Roll every leaked key; one RollResult per distinct key, in order.

    Args:
        leaked: keys to roll (scanner findings or ``--key-env``); duplicates count once.
        options: credentials, grace, delivery targets, dry run.
        journal: the incident record; may be None only for a dry run.
        service: the Stripe calls (a fake in unit tests); default: the stripe client.

    Raises:
        UsageError: bad options (grace out of range, no credential, bad --deliver).
        RefusedError: another incident left a rotation of one of these keys
            unfinished; it must be resumed there.
        StripeApiError / other: only for the crash-like cases the caller must see;
            per-key Stripe failures become results with status ``failed``.
    """
    _check_options(options, journal)
    service = service or StripeKeyService(
        options.api_base,
        max_network_retries=options.max_network_retries,
        retry_seconds=options.retry_seconds,
        request_timeout=options.request_timeout,
    )
    unique = list(
        {
            key.fingerprint: key
            for key in leaked
            if key.kind is not KeyKind.PUBLISHABLE_KEY
        }.values()
    )
    targets = targets_per_key(options.deliver, unique)
    roller = _Roller(options, journal, service, targets)
    if journal is not None and not options.dry_run:
        refuse_unfinished_elsewhere(journal, unique)
    roller.record(
        "roll-started",
        "",
        keys=[k.fingerprint for k in unique],
        dry_run=options.dry_run,
        grace_minutes=options.grace_minutes,
        targets=sorted({t.describe() for ts in targets.values() for t in ts}),
        specs=list(options.deliver),
        credential="leaked-key" if options.use_leaked_key else "operator-key",
    )
    results = []
    for key in unique:
        try:
            results.append(roller.roll(key))
        except StripeApiError as exc:
            roller.record(
                "roll-failed", key.fingerprint, redacted=key.redacted, error=exc.message
            )
            results.append(
                roller.result(key, RollStatus.FAILED, message=roller.failure(key, exc))
            )
    return results


def targets_per_key(
    specs: Sequence[str], keys: Sequence[LeakedKey]
) -> dict[str, list[Target]]:
    """Each key's own delivery targets, with ``{fingerprint}``, ``{index}`` and
    ``{mode}`` in a spec filled in for that key.

    Two new keys delivered to one place would leave only the last one there, and
    the first would be lost for good; so with more than one key to deliver, every
    spec must name a placeholder that tells the keys apart.

    Raises:
        UsageError: a spec cannot be parsed, or is shared by several keys.
    """
    delivered = [k for k in keys if k.kind is not KeyKind.WEBHOOK_SECRET]
    if len(delivered) > 1:
        shared = [s for s in specs if not any(p in s for p in _DISTINCT_PLACEHOLDERS)]
        if shared:
            raise UsageError(
                f"{len(delivered)} keys would all be delivered to {shared[0]!r}; "
                "each new key would overwrite the one before",
                "Put {fingerprint} or {index} in the target, e.g. "
                "--deliver 'file:new-keys/stripe-{index}.key' or "
                "--deliver 'env-file:.env:STRIPE_SECRET_KEY_{index}'",
            )
    per_key = {
        key.fingerprint: [
            parse_target(fill_target(spec, key.fingerprint[:12], index, str(key.mode)))
            for spec in specs
        ]
        for index, key in enumerate(delivered, start=1)
    }
    for spec in specs:
        # A bad spec is refused even when no key needs it.
        parse_target(fill_target(spec, "0" * 12, 1, "live"))
    return per_key


def fill_target(spec: str, short_fingerprint: str, index: int, mode: str) -> str:
    """A --deliver value with {fingerprint}, {index} and {mode} filled in."""
    return (
        spec.replace("{fingerprint}", short_fingerprint)
        .replace("{index}", str(index))
        .replace("{mode}", mode)
    )


_DISTINCT_PLACEHOLDERS = ("{fingerprint}", "{index}")


def check_roll_options(options: RollOptions, leaked: Sequence[LeakedKey]) -> None:
    """Refuse options that cannot work, before an incident is opened for them.

    Raises:
        UsageError: grace out of range, no credential, a bad or shared --deliver.
    """
    _check_options(options, None if options.dry_run else _NO_JOURNAL_NEEDED)
    unique = {k.fingerprint: k for k in leaked if k.kind is not KeyKind.PUBLISHABLE_KEY}
    targets_per_key(options.deliver, list(unique.values()))


_NO_JOURNAL_NEEDED = object()


def _check_options(options: RollOptions, journal: object | None) -> None:
    if not 0 <= options.grace_minutes <= MAX_GRACE_MINUTES:
        raise UsageError(
            f"--grace {options.grace_minutes} is outside "
            f"0..{MAX_GRACE_MINUTES} minutes",
            "Stripe keeps an old key for at most 7 days; use --grace 0 after a leak.",
        )
    if not options.api_key and not options.use_leaked_key:
        raise UsageError(
            "no Stripe key to authenticate the rotation",
            "Set STRIPE_API_KEY to a key that may manage API keys, or pass "
            "--use-leaked-key to authenticate with the leaked key itself.",
        )
    if journal is None and not options.dry_run:
        raise UsageError(
            "rolling needs an incident journal (only --dry-run runs without)"
        )


class _Roller:
    """Carries the run's options, journal, client and targets through each key."""

    def __init__(
        self,
        options: RollOptions,
        journal: Journal | None,
        service: KeyService,
        targets: dict[str, list[Target]],
    ) -> None:
        self.options = options
        self.journal = journal
        self.service = service
        self.targets_by_key = targets

    def targets(self, key_fingerprint: str) -> list[Target]:
        return self.targets_by_key.get(key_fingerprint, [])

    # -- journal ------------------------------------------------------------

    def record(self, event: str, key_fingerprint: str, **data: Any) -> None:
        """Journal an event (data holds ids and redacted forms only), then notify."""
        if self.journal is not None:
            self.journal.append(
                STEP, event, fingerprint=key_fingerprint or None, **data
            )
        if self.options.on_event is not None:
            self.options.on_event(event, key_fingerprint)

    def last(self, event: str, key_fingerprint: str) -> dict[str, Any] | None:
        if self.journal is None:
            return None
        found = self.journal.find(STEP, event, fingerprint=key_fingerprint)
        return found[-1].data if found else None

    def result(self, key: LeakedKey, status: RollStatus, **fields: Any) -> RollResult:
        return RollResult(
            fingerprint=key.fingerprint,
            redacted=key.redacted,
            kind=str(key.kind),
            mode=str(key.mode),
            status=status,
            **fields,
        )

    def credential(self, key: LeakedKey, kind: str) -> str:
        if kind == "leaked-key" or self.options.api_key is None:
            return key.secret
        return self.options.api_key

    def credential_kind(self, key: LeakedKey) -> str:
        operator = self.options.api_key
        if self.options.use_leaked_key or operator is None:
            return "leaked-key"
        if secrets.compare_digest(fingerprint(operator), key.fingerprint):
            return "leaked-key"
        return "operator-key"

    def failure(self, key: LeakedKey, exc: StripeApiError) -> str:
        """What went wrong and how to resume; names the kept decryption key file."""
        requested = self.last("rotation-requested", key.fingerprint)
        if requested is None or self.journal is None:
            return f"{exc.message}. {exc.hint or ''}".strip()
        key_file = self.journal.secret_file(requested["private_key_file"])
        return (
            f"{exc.message}. The rotation may have been applied: its decryption key "
            f"is kept in {key_file} (0600) until the new key is delivered. Resume "
            f"(same request, never a second rotation): incident roll --incident "
            f"{self.journal.incident_id}"
        )

    # -- one key ------------------------------------------------------------

    def roll(self, key: LeakedKey) -> RollResult:
        if key.kind is KeyKind.WEBHOOK_SECRET:
            return self.webhook(key)
        requested = self.last("rotation-requested", key.fingerprint)
        if requested is not None and not self.options.dry_run:
            logger.info("resuming the rotation of %s from the journal", key.redacted)
            delivered = self.last("delivered", key.fingerprint)
            if delivered is not None:
                # A crash right after delivery: finish what followed it.
                if delivered.get("emergency_file"):
                    self.open_move_step(key, Path(delivered["emergency_file"]))
                if self.journal is not None:
                    leftover = self.journal.secret_file(requested["private_key_file"])
                    if leftover.exists():
                        leftover.unlink()
                        self.record("rotation-key-destroyed", key.fingerprint,
                                    file=leftover.name)
                return self.confirm(key, None, requested)
            return self.complete_rotation(key, requested)

        kind = self.credential_kind(key)
        auth = self.credential(key, kind)
        found: dict[str, Any] | list[dict[str, Any]] | None = None
        if kind == "operator-key":
            # Look the key up before our own liveness read touches its last_used.
            found = self.find(key, auth)
        # The check itself updates Stripe's last_used; the report needs its start.
        started_at = utc_now()
        liveness = self.service.check_liveness(key.secret)
        self.record(
            "liveness-checked",
            key.fingerprint,
            redacted=key.redacted,
            liveness=str(liveness),
            started_at=started_at,
            checked_at=utc_now(),
            # Read before this check, so the report can trust it as "not ours".
            **(
                {"key_id": found.get("id"), "last_used": found.get("last_used")}
                if isinstance(found, dict)
                else {}
            ),
        )
        if liveness is Liveness.REVOKED:
            self.record("already-revoked", key.fingerprint, redacted=key.redacted)
            return self.result(
                key,
                RollStatus.ALREADY_REVOKED,
                message=(
                    "Stripe already rejects this key; nothing to roll. "
                    "Remove it from history next: incident purge"
                ),
            )
        if liveness is Liveness.UNKNOWN:
            raise StripeApiError(
                "could not tell whether the key is live (network)",
                "Run the same command again when Stripe is reachable.",
            )
        if found is None:
            found = self.find(key, auth)
        if isinstance(found, list):
            return self.unmatched(key, found)
        return self.rotate(key, found, kind)

    def find(self, key: LeakedKey, auth: str) -> dict[str, Any] | list[dict[str, Any]]:
        """The one key object matching the leaked value, or the candidates list."""
        return pick_key_object(key, self.service.list_keys(auth))

    def unmatched(self, key: LeakedKey, candidates: list[dict[str, Any]]) -> RollResult:
        steps = DASHBOARD_STEPS.format(last4=key.secret[-4:])
        if not candidates:
            self.record("key-not-found", key.fingerprint, redacted=key.redacted)
            return self.result(
                key,
                RollStatus.NOT_FOUND,
                message=(
                    "No API key object of this account matches the leaked key (is "
                    "STRIPE_API_KEY from the same account and mode?). " + steps
                ),
            )
        ids = [c.get("id") for c in candidates]
        if all(c.get("status") == "expired" for c in candidates):
            self.record(
                "already-revoked", key.fingerprint, redacted=key.redacted, key_ids=ids
            )
            return self.result(
                key,
                RollStatus.ALREADY_REVOKED,
                old_key_id=ids[0],
                message="The matching key object is already expired.",
            )
        self.record(
            "key-ambiguous", key.fingerprint, redacted=key.redacted, key_ids=ids
        )
        return self.result(
            key,
            RollStatus.AMBIGUOUS,
            message=(
                f"{len(ids)} active keys end in {key.secret[-4:]} "
                f"({', '.join(map(str, ids))}); "
                "refusing to guess. " + steps
            ),
        )

    def rotate(self, key: LeakedKey, obj: dict[str, Any], kind: str) -> RollResult:
        key_id = str(obj["id"])
        last_used = obj.get("last_used")
        self.record(
            "key-found",
            key.fingerprint,
            redacted=key.redacted,
            key_id=key_id,
            last_used=last_used,
            name=obj.get("name"),
            status=obj.get("status"),
        )
        grace = self.options.grace_minutes
        self_auth = kind == "leaked-key" and grace == 0
        minutes = SELF_AUTH_WINDOW_MINUTES if self_auth else grace
        if self.options.dry_run:
            targets = (
                ", ".join(t.describe() for t in self.targets(key.fingerprint))
                or "an emergency file"
            )
            return self.result(
                key,
                RollStatus.DRY_RUN,
                old_key_id=key_id,
                last_used=last_used,
                message=(
                    f"would rotate {key_id} (old key expires in {grace} min) "
                    "and deliver "
                    f"the new key to {targets}"
                ),
            )

        assert self.journal is not None
        key_file = self.journal.secret_file(f"rotation-{key.fingerprint[:16]}.pem")
        write_secret_file(key_file, generate_private_key_pem())
        requested = {
            "redacted": key.redacted,
            "key_id": key_id,
            "last_used": last_used,
            "idempotency_key": idempotency_key(
                self.journal.incident_id, key.fingerprint, "rotate"
            ),
            "private_key_file": key_file.name,
            "recipient_key_id": f"incident-{key.fingerprint[:12]}",
            "expire_current_key_in_minutes": minutes,
            "grace_minutes": grace,
            "expire_after_delivery": self_auth,
            "credential": kind,
            "requested_at": utc_now(),
        }
        self.record("rotation-requested", key.fingerprint, **requested)
        return self.complete_rotation(key, requested)

    def complete_rotation(self, key: LeakedKey, req: dict[str, Any]) -> RollResult:
        """Send (or re-send) the recorded rotate request; decrypt; deliver."""
        assert self.journal is not None
        key_file = self.journal.secret_file(req["private_key_file"])
        if not key_file.exists():
            raise StripeApiError(
                f"the rotation key file {key_file} is missing; cannot decrypt the "
                "new key",
                "Roll the key in the Dashboard (Developers > API keys) and record it.",
            )
        private_pem = key_file.read_bytes()
        body = {
            "expire_current_key_in_minutes": req["expire_current_key_in_minutes"],
            "public_key": {
                "id": req["recipient_key_id"],
                "pem_key": {"algorithm": "RSA", "data": public_key_pem(private_pem)},
            },
        }
        auth = self.credential(key, req["credential"])
        try:
            response = self.service.rotate(
                auth, req["key_id"], body, req["idempotency_key"]
            )
        except KeyAuthError as exc:
            raise StripeApiError(
                f"{exc.message}; the rotation of {req['key_id']} is not confirmed",
                "Fix the credential and run the same command again with "
                f"--incident {self.journal.incident_id} --incident-dir "
                f"{self.journal.directory.parent}; it re-sends the same request "
                "and cannot rotate twice.",
            ) from None
        new_secret = reveal_secret(response, private_pem)
        new_id = str(response["id"])
        accepted_at = response.get("created") or utc_now()
        expires_at = plus_minutes(accepted_at, req["expire_current_key_in_minutes"])
        if self.last("rotation-accepted", key.fingerprint) is None:
            self.record(
                "rotation-accepted",
                key.fingerprint,
                old_key_id=req["key_id"],
                new_key_id=new_id,
                new_fingerprint=fingerprint(new_secret),
                new_redacted=redact(new_secret),
                accepted_at=accepted_at,
                old_key_expires_at=expires_at,
            )

        emergency = self.journal.secret_file(f"new-key-{key.fingerprint[:12]}.txt")
        outcome = deliver_secret(
            new_secret,
            self.targets(key.fingerprint),
            emergency,
            attempts=self.options.delivery_attempts
        )
        self.record(
            "delivered",
            key.fingerprint,
            new_key_id=new_id,
            new_fingerprint=fingerprint(new_secret),
            targets=outcome.delivered,
            failed=[f"{d}: {r}" for d, r in outcome.failed],
            emergency_file=str(outcome.emergency_file or "") or None,
        )
        if outcome.emergency_file is not None:
            self.open_move_step(key, outcome.emergency_file)
        # The new key is safe on disk somewhere: the decryption key has done its job.
        key_file.unlink(missing_ok=True)
        self.record("rotation-key-destroyed", key.fingerprint, file=key_file.name)
        return self.confirm(key, new_secret, req)

    def open_move_step(self, key: LeakedKey, emergency: Path) -> None:
        """No target took the new key: it waits in a 0600 file until moved."""
        step_id = f"move-new-key-{key.fingerprint[:12]}"
        if self.journal is None or self.journal.find(
            STEP, "manual-step-pending", step_id=step_id
        ):
            return
        self.record(
            "manual-step-pending",
            key.fingerprint,
            step_id=step_id,
            redacted=key.redacted,
            title=f"Move the new key for {key.redacted} where the app reads it",
            instructions=[
                f"The new key is only in {emergency} (0600): no --deliver target "
                "took it.",
                "Put it where the application reads its Stripe key (secrets "
                "manager, deploy configuration), restart the application, then "
                f"delete the file: shred -u {emergency}",
                "Then close this step: "
                + self.journal.command("step", "done", step_id),
            ],
        )

    def confirm(
        self, key: LeakedKey, new_secret: str | None, req: dict[str, Any]
    ) -> RollResult:
        """Check the new key works and the old key is expired and rejected."""
        accepted = self.last("rotation-accepted", key.fingerprint) or {}
        delivered = self.last("delivered", key.fingerprint) or {}
        rejected = self.last("old-key-rejected", key.fingerprint)
        messages: list[str] = []
        if new_secret is not None:
            new_live = self.service.check_liveness(new_secret)
            self.record(
                "new-key-confirmed"
                if new_live is Liveness.LIVE
                else "new-key-unconfirmed",
                key.fingerprint,
                new_key_id=accepted.get("new_key_id"),
                liveness=str(new_live),
            )
            if new_live is not Liveness.LIVE:
                messages.append("The new key did not authenticate yet; check it.")
        if req.get("expire_after_delivery") and not self.last(
            "old-key-expired", key.fingerprint
        ):
            self.expire_old(key, new_secret, req)
        if rejected is None and req.get("grace_minutes", 0) == 0:
            rejected = self.poll_rejected(key, req["key_id"])
        elif req.get("grace_minutes", 0) > 0 and rejected is None:
            self.record(
                "old-key-expiry-scheduled",
                key.fingerprint,
                old_key_id=req["key_id"],
                expires_at=accepted.get("old_key_expires_at"),
            )
            messages.append(
                f"The old key keeps working until "
                f"{accepted.get('old_key_expires_at')} (--grace)."
            )
        if rejected is None and req.get("grace_minutes", 0) == 0:
            messages.append(
                "The old key was still accepted when polling stopped; "
                "check the Dashboard."
            )
        emergency = delivered.get("emergency_file")
        targets = list(delivered.get("targets") or [])
        if emergency and self.targets(key.fingerprint):
            messages.insert(
                0,
                f"Delivery failed; the new key is in {emergency} (0600). "
                "Store it where your app reads it, then delete the file.",
            )
        elif emergency:
            messages.insert(
                0,
                f"No --deliver target: the new key is in {emergency} "
                "(0600). Store it where your app reads it, then delete it.",
            )
        failed = tuple(delivered.get("failed") or ())
        if failed and not emergency:
            messages.insert(0, "Not delivered to: " + "; ".join(failed) + ".")
        return self.result(
            key,
            RollStatus.ROLLED,
            old_key_id=req["key_id"],
            new_key_id=accepted.get("new_key_id"),
            new_redacted=accepted.get("new_redacted"),
            rotation_accepted_at=accepted.get("accepted_at"),
            old_key_expires_at=accepted.get("old_key_expires_at"),
            old_key_rejected_at=(rejected or {}).get("rejected_at"),
            last_used=req.get("last_used"),
            delivered_to=targets,
            emergency_file=Path(emergency) if emergency else None,
            not_delivered=failed,
            message=" ".join(messages) or "Rolled, delivered and confirmed.",
        )

    def expire_old(
        self, key: LeakedKey, new_secret: str | None, req: dict[str, Any]
    ) -> None:
        """Expire the old key now that its replacement is safe (self-auth rotations)."""
        auth = new_secret or key.secret
        expire_key = idempotency_key(self.record_id(), key.fingerprint, "expire")
        self.record(
            "old-key-expire-requested",
            key.fingerprint,
            old_key_id=req["key_id"],
            idempotency_key=expire_key,
        )
        try:
            self.service.expire(auth, req["key_id"], expire_key)
        except StripeApiError as exc:
            # Already expired (a re-run) is fine; anything else is worth saying.
            logger.warning("expiring %s: %s", req["key_id"], exc.message)
        self.record("old-key-expired", key.fingerprint, old_key_id=req["key_id"])

    def record_id(self) -> str:
        return self.journal.incident_id if self.journal else "dry-run"

    def poll_rejected(self, key: LeakedKey, old_key_id: str) -> dict[str, Any] | None:
        """Wait (bounded) until Stripe rejects the old key; journal either way."""
        rejected_at = wait_until_rejected(
            self.service, key.secret, self.options.confirm_timeout
        )
        if rejected_at is None:
            self.record(
                "old-key-still-accepted",
                key.fingerprint,
                old_key_id=old_key_id,
                checked_until=utc_now(),
            )
            return None
        data = {"old_key_id": old_key_id, "rejected_at": rejected_at}
        self.record("old-key-rejected", key.fingerprint, **data)
        return data

    def webhook(self, key: LeakedKey) -> RollResult:
        step_id = manual_step_id(key)
        steps = webhook_roll_steps(key, self.journal)
        if self.journal is not None and not self.journal.find(
            STEP, "manual-step-pending", step_id=step_id
        ):
            self.record(
                "manual-step-pending",
                key.fingerprint,
                step_id=step_id,
                redacted=key.redacted,
                title="Roll the webhook signing secret in the Stripe Dashboard",
                instructions=steps,
            )
        return self.result(
            key,
            RollStatus.MANUAL_PENDING,
            manual_steps=tuple(steps),
            message=(
                "Stripe's API cannot roll a webhook signing secret; "
                f"follow the steps below, then close step {step_id}."
            ),
        )
