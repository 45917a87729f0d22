"""Stripe calls for rolling, through the ``stripe`` package's StripeClient.

The typed SDK has no v2 IAM endpoints outside preview builds, so they go through
``StripeClient.raw_request`` with a ``.preview`` Stripe-Version. Every call is
retried on 429, 5xx and network trouble with backoff and jitter inside a time
budget; POSTs carry the caller's idempotency key so a retry can never act twice.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

import stripe

from incident.errors import StripeApiError, UsageError
from incident.keys.model import PREVIEW_VERSION, Liveness
from incident.redact import fingerprint, redact, redact_text, short_fingerprint

logger = logging.getLogger(__name__)


class _StripeLogGuard(logging.Filter):
    """Keep the stripe package's own logs free of keys.

    NOTE: at DEBUG the package logs whole response bodies, and a test-mode list or
    rotate response carries plaintext tokens. Those records are dropped; the rest
    are masked like every other log line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "API response body" in message or "Post details" in message:
            return False
        masked = redact_text(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


logging.getLogger("stripe").addFilter(_StripeLogGuard())

API_KEYS_PATH = "/v2/iam/api_keys"
MAX_LIST_PAGES = 50


class KeyAuthError(StripeApiError):
    """The key used for a call does not authenticate (invalid or expired)."""


class KeyNotFoundError(StripeApiError):
    """The API has no key object with that id (for this account and mode)."""


class KeyService(Protocol):
    """What rolling needs from Stripe; the sandbox and tests' fakes provide it too."""

    def check_liveness(self, secret: str) -> Liveness: ...

    def list_keys(self, api_key: str) -> list[dict[str, Any]]: ...

    def retrieve(self, api_key: str, key_id: str) -> dict[str, Any]: ...

    def rotate(
        self, api_key: str, key_id: str, body: dict[str, Any], idempotency_key: str
    ) -> dict[str, Any]: ...

    def expire(
        self, api_key: str, key_id: str, idempotency_key: str
    ) -> dict[str, Any]: ...


class StripeKeyService:
    """KeyService over the stripe package, pointed at api_base when given."""

    def __init__(
        self,
        api_base: str | None = None,
        *,
        max_network_retries: int = 2,
        retry_seconds: float = 30.0,
        request_timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if os.environ.get("STRIPE_LOG", "").lower() == "debug":
            # The stripe package would print response bodies (test-mode keys in
            # plaintext) straight to stderr, past every logging filter.
            raise UsageError(
                "STRIPE_LOG=debug would print Stripe responses, keys included",
                "Unset it (unset STRIPE_LOG) and use --debug instead.",
            )
        if api_base:
            _check_api_base(api_base)
        self.api_base = api_base.rstrip("/") if api_base else None
        self.max_network_retries = max_network_retries
        self.retry_seconds = retry_seconds
        self.request_timeout = request_timeout
        self.sleep = sleep
        self._clients: dict[str, stripe.StripeClient] = {}

    # -- KeyService ---------------------------------------------------------

    def check_liveness(self, secret: str) -> Liveness:
        """Read /v1/account with the key itself: live, revoked, or unknown."""
        try:
            self._call(secret, "get", "/v1/account")
        except KeyAuthError:
            return Liveness.REVOKED
        except _PermissionDenied:
            # A restricted key without the permission still authenticated.
            return Liveness.LIVE
        except StripeApiError as exc:
            logger.warning("liveness of %s unknown: %s", redact(secret), exc.message)
            return Liveness.UNKNOWN
        return Liveness.LIVE

    def list_keys(self, api_key: str) -> list[dict[str, Any]]:
        """Every API key object of the account (expired ones too), all pages."""
        keys: list[dict[str, Any]] = []
        url: str | None = API_KEYS_PATH
        params: dict[str, Any] = {"limit": 100, "include_expired": True}
        for _ in range(MAX_LIST_PAGES):
            if url is None:
                return keys
            page = self._call(api_key, "get", url, **params)
            keys.extend(page.get("data") or [])
            url = page.get("next_page_url")
            params = {}  # next_page_url carries the query already
        raise StripeApiError(
            f"more than {MAX_LIST_PAGES} pages of API keys; stopped listing",
            "Find the key in the Dashboard (Developers > API keys) instead.",
        )

    def retrieve(self, api_key: str, key_id: str) -> dict[str, Any]:
        return self._call(api_key, "get", f"{API_KEYS_PATH}/{key_id}")

    def rotate(
        self, api_key: str, key_id: str, body: dict[str, Any], idempotency_key: str
    ) -> dict[str, Any]:
        return self._call(
            api_key,
            "post",
            f"{API_KEYS_PATH}/{key_id}/rotate",
            idempotency_key=idempotency_key,
            **body,
        )

    def expire(self, api_key: str, key_id: str, idempotency_key: str) -> dict[str, Any]:
        return self._call(
            api_key,
            "post",
            f"{API_KEYS_PATH}/{key_id}/expire",
            idempotency_key=idempotency_key,
        )

    # -- plumbing -----------------------------------------------------------

    def _client(self, api_key: str) -> stripe.StripeClient:
        cache_key = fingerprint(api_key)
        if cache_key not in self._clients:
            addresses: dict[str, Any] = {}
            if self.api_base:
                addresses = {
                    "api": self.api_base,
                    "connect": self.api_base,
                    "files": self.api_base,
                    "meter_events": self.api_base,
                }
            self._clients[cache_key] = stripe.StripeClient(
                api_key,
                base_addresses=addresses,  # type: ignore[arg-type]
                max_network_retries=self.max_network_retries,
                http_client=stripe.RequestsClient(timeout=self.request_timeout),
            )
        return self._clients[cache_key]

    def _call(
        self, api_key: str, method: str, path: str, **params: Any
    ) -> dict[str, Any]:
        """One call, retried on 429/5xx/network trouble within retry_seconds."""
        if path.startswith("/v2/"):
            params["stripe_version"] = PREVIEW_VERSION
        deadline = time.monotonic() + self.retry_seconds
        attempt = 0
        who = short_fingerprint(fingerprint(api_key))
        while True:
            attempt += 1
            try:
                response = self._client(api_key).raw_request(method, path, **params)
                logger.info(
                    "stripe %s %s -> %s (request %s, key %s)",
                    method.upper(),
                    path.split("?")[0],
                    response.code,
                    response.request_id,
                    who,
                )
                return dict(response.data)
            except (
                stripe.RateLimitError,
                stripe.APIConnectionError,
                stripe.APIError,
            ) as exc:
                delay = min(8.0, 0.25 * 2 ** (attempt - 1)) * (0.5 + random.random())
                if time.monotonic() + delay > deadline:
                    raise _translate(exc, method, path) from None
                logger.info(
                    "stripe %s %s: %s; retrying in %.2fs",
                    method.upper(),
                    path,
                    type(exc).__name__,
                    delay,
                )
                self.sleep(delay)
            except stripe.StripeError as exc:
                raise _translate(exc, method, path) from None


def _check_api_base(api_base: str) -> None:
    """Refuse to send API keys in clear text anywhere but this machine."""
    parts = urlsplit(api_base)
    loopback = parts.hostname in {"127.0.0.1", "localhost", "::1"}
    if parts.scheme == "https" or (parts.scheme == "http" and loopback):
        return
    raise UsageError(
        f"--api-base {api_base} would send API keys without TLS",
        "Use an https:// URL, or http:// only on 127.0.0.1 (the offline sandbox).",
    )


class _PermissionDenied(StripeApiError):
    """403: the key authenticated but lacks the permission."""


def _translate(exc: stripe.StripeError, method: str, path: str) -> StripeApiError:
    """Turn a stripe error into ours, with no secret in the text."""
    text = redact_text(exc.user_message or str(exc) or type(exc).__name__)
    where = f"{method.upper()} {path.split('?')[0]}"
    if isinstance(exc, stripe.AuthenticationError):
        return KeyAuthError(
            f"{where}: the API key was refused ({text})",
            "Check STRIPE_API_KEY, or pass --use-leaked-key.",
        )
    if isinstance(exc, stripe.PermissionError):
        return _PermissionDenied(
            f"{where}: permission denied ({text})",
            "Use a secret key that may manage API keys.",
        )
    if isinstance(exc, stripe.InvalidRequestError) and exc.http_status == 404:
        return KeyNotFoundError(f"{where}: not found ({text})")
    if isinstance(exc, stripe.RateLimitError):
        return StripeApiError(
            f"{where}: rate limited until the retry budget ran out",
            "Wait a minute, then run the same command again.",
        )
    if isinstance(exc, stripe.APIConnectionError):
        return StripeApiError(
            f"{where}: network trouble reaching Stripe",
            "Run the same command again; it resumes safely.",
        )
    return StripeApiError(
        f"{where}: {text}", "Run the same command again; it resumes safely."
    )
