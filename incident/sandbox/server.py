"""A small Stripe-compatible HTTP server: exactly the calls `incident roll` makes.

Implements ``GET /v1/account`` and the v2 IAM API keys endpoints (list with v2
pagination, retrieve, rotate, expire) with Stripe's response and error shapes,
idempotent replay of saved responses, and injectable faults. It listens on
127.0.0.1 by default and never talks to Stripe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from joserfc import jwe
from joserfc.jwk import RSAKey

from incident.sandbox.state import (
    Rotation,
    SandboxKey,
    SandboxState,
    SavedResponse,
    iso,
    mint_secret,
)

logger = logging.getLogger(__name__)

MAX_EXPIRE_MINUTES = 10080
_KEY_PATH = re.compile(
    r"^/v2/iam/api_keys/(?P<id>[A-Za-z0-9_]+)(?:/(?P<action>rotate|expire))?$"
)


class ApiError(Exception):
    """An error response in Stripe's shape."""

    def __init__(self, status: int, type_: str, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type_, "code": code, "message": message}}


def _masked(secret: str) -> str:
    # Stripe echoes a masked form of a bad key in its error message; so do we.
    return f"{secret[:8]}{'*' * 4}{secret[-4:]}" if len(secret) > 12 else "****"


class SandboxServer(ThreadingHTTPServer):
    """The HTTP server; holds the state every handler thread shares."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: SandboxState) -> None:
        super().__init__(address, SandboxRequestHandler)
        self.state = state

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout, dropped connection) is part of the game.
        logger.debug("sandbox: client %s went away", client_address, exc_info=True)


class SandboxRequestHandler(BaseHTTPRequestHandler):
    """Routes one request; every answer is JSON."""

    server: SandboxServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("sandbox: " + format, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # -- plumbing -----------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        state = self.server.state
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        with state.lock:
            state.requests.append((method, split.path))
        fault = state.take_fault(method, split.path)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
        elif fault is not None and fault.kind != "drop-after-apply":
            self._send_fault(fault.kind)
            return
        try:
            status, body, replayed = self._route(
                method, split.path, split.query, raw_body
            )
        except ApiError as exc:
            status, body, replayed = exc.status, json.dumps(exc.body).encode(), False
        if fault is not None and fault.kind == "drop-after-apply":
            # The change is applied and its response saved; the client never hears.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(status, body, replayed=replayed)

    def _send(self, status: int, body: bytes, *, replayed: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Request-Id", "req_" + secrets.token_hex(8))
        if replayed:
            self.send_header("Idempotent-Replayed", "true")
        self.end_headers()
        self.wfile.write(body)

    def _send_fault(self, kind: str) -> None:
        errors = {
            "401": ApiError(
                401,
                "invalid_request_error",
                "api_key_expired",
                "Expired API Key provided (injected by the sandbox).",
            ),
            "429": ApiError(
                429,
                "rate_limit",
                "rate_limit",
                "Too many requests hit the API too quickly.",
            ),
            "500": ApiError(
                500,
                "api_error",
                "internal_error",
                "An unexpected error occurred (injected by the sandbox).",
            ),
        }
        error = errors[kind]
        self._send(error.status, json.dumps(error.body).encode())

    def _authenticate(self) -> SandboxKey:
        state = self.server.state
        header = self.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        if not token:
            raise ApiError(
                401,
                "invalid_request_error",
                "api_key_required",
                "You did not provide an API key.",
            )
        key = state.key_for_secret(token)
        now = time.time()
        if key is None:
            raise ApiError(
                401,
                "invalid_request_error",
                "api_key_invalid",
                f"Invalid API Key provided: {_masked(token)}",
            )
        if not key.authenticates(now):
            raise ApiError(
                401,
                "invalid_request_error",
                "api_key_expired",
                f"Expired API Key provided: {_masked(token)}",
            )
        key.last_used = now
        return key

    # -- routes -------------------------------------------------------------

    def _route(
        self, method: str, path: str, query: str, raw_body: bytes
    ) -> tuple[int, bytes, bool]:
        caller = self._authenticate()
        if path == "/v1/account" and method == "GET":
            return 200, json.dumps(self._account(caller)).encode(), False
        if not path.startswith("/v2/iam/api_keys"):
            raise ApiError(
                404,
                "invalid_request_error",
                "resource_missing",
                f"Unrecognized request URL ({method}: {path}).",
            )
        if not self.headers.get("Stripe-Version", "").endswith(".preview"):
            raise ApiError(
                400,
                "invalid_request_error",
                "preview_version_required",
                "The API keys endpoints need a .preview Stripe-Version.",
            )
        if caller.secret.startswith("rk_"):
            raise ApiError(
                403,
                "invalid_request_error",
                "permission_error",
                "This restricted key cannot manage API keys.",
            )
        if path == "/v2/iam/api_keys" and method == "GET":
            return 200, json.dumps(self._list(caller, parse_qs(query))).encode(), False
        match = _KEY_PATH.match(path)
        if match is None:
            raise ApiError(
                404,
                "invalid_request_error",
                "resource_missing",
                f"Unrecognized request URL ({method}: {path}).",
            )
        if method == "GET" and match["action"] is None:
            key = self._find(caller, match["id"])
            return 200, json.dumps(key.to_api(time.time())).encode(), False
        if method == "POST" and match["action"] is not None:
            return self._idempotent(
                caller, path, raw_body, lambda body: self._act(caller, match, body)
            )
        raise ApiError(
            404,
            "invalid_request_error",
            "resource_missing",
            f"Unrecognized request URL ({method}: {path}).",
        )

    def _account(self, caller: SandboxKey) -> dict[str, Any]:
        if caller.secret.startswith("rk_"):
            # A restricted key without the account permission: it authenticated,
            # which is what a liveness check needs to know.
            raise ApiError(
                403,
                "invalid_request_error",
                "permission_error",
                "The provided key does not have the required permissions.",
            )
        return {
            "id": self.server.state.account_id,
            "object": "account",
            "country": "US",
            "default_currency": "usd",
            "charges_enabled": True,
            "livemode": caller.livemode,
        }

    def _find(self, caller: SandboxKey, key_id: str) -> SandboxKey:
        key = self.server.state.keys.get(key_id)
        if key is None or key.livemode != caller.livemode:
            raise ApiError(
                404,
                "invalid_request_error",
                "resource_missing",
                f"No such api_key: '{key_id}'",
            )
        return key

    def _list(self, caller: SandboxKey, params: dict[str, list[str]]) -> dict[str, Any]:
        state = self.server.state
        now = time.time()
        limit = max(1, min(100, int(params.get("limit", ["10"])[0])))
        include_expired = params.get("include_expired", ["false"])[0].lower() in {
            "true",
            "1",
        }
        offset = int(params.get("page", ["0"])[0] or 0)
        with state.lock:
            keys = sorted(
                (
                    k
                    for k in state.keys.values()
                    if k.livemode == caller.livemode
                    and (include_expired or not k.is_expired(now))
                ),
                key=lambda k: (-k.created, k.id),
            )
        page = keys[offset : offset + limit]

        def url(start: int) -> str:
            query = {"limit": limit, "page": start}
            if include_expired:
                query["include_expired"] = "true"
            return "/v2/iam/api_keys?" + urlencode(query)

        return {
            "data": [k.to_api(now) for k in page],
            "next_page_url": url(offset + limit)
            if offset + limit < len(keys)
            else None,
            "previous_page_url": url(max(0, offset - limit)) if offset > 0 else None,
        }

    def _idempotent(
        self, caller: SandboxKey, path: str, raw_body: bytes, act: Any
    ) -> tuple[int, bytes, bool]:
        state = self.server.state
        idempotency_key = self.headers.get("Idempotency-Key")
        request_hash = hashlib.sha256(path.encode() + b"\0" + raw_body).hexdigest()
        scope = ("live" if caller.livemode else "test", idempotency_key or "")
        with state.lock:
            saved = state.idempotent.get(scope) if idempotency_key else None
            if saved is not None:
                if saved.request_hash != request_hash:
                    raise ApiError(
                        400,
                        "idempotency_error",
                        "idempotency_key_in_use",
                        "Keys for idempotent requests can only be used "
                        "with the same parameters they were first used with.",
                    )
                return saved.status, saved.body, True
            body = json.loads(raw_body or b"{}")
            status, payload = act(body)
            encoded = json.dumps(payload).encode()
            if idempotency_key and status < 500:
                state.idempotent[scope] = SavedResponse(status, encoded, request_hash)
            return status, encoded, False

    def _act(
        self, caller: SandboxKey, match: re.Match[str], body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        key = self._find(caller, match["id"])
        now = time.time()
        if key.is_expired(now):
            raise ApiError(
                400,
                "invalid_request_error",
                "api_key_expired",
                f"The API key {key.id} is already expired.",
            )
        if match["action"] == "expire":
            key.expires_at = now
            key.rejection_lag = self.server.state.rejection_lag
            self.server.state.expirations.append(key.id)
            return 200, key.to_api(now)
        return 200, self._rotate(key, body, now)

    def _rotate(
        self, key: SandboxKey, body: dict[str, Any], now: float
    ) -> dict[str, Any]:
        state = self.server.state
        minutes = body.get("expire_current_key_in_minutes", 0)
        if not isinstance(minutes, int) or not 0 <= minutes <= MAX_EXPIRE_MINUTES:
            raise ApiError(
                400,
                "invalid_request_error",
                "parameter_invalid",
                "expire_current_key_in_minutes must be 0..10080.",
            )
        public_key = body.get("public_key")
        reveal: dict[str, Any] = {}
        new = SandboxKey(
            id="ak_" + secrets.token_hex(12),
            secret=mint_secret(key.secret[:8]),
            livemode=key.livemode,
            created=now,
            name=key.name,
            note=key.note,
        )
        if key.key_type == "secret_key":
            if not isinstance(public_key, dict):
                raise ApiError(
                    400,
                    "invalid_request_error",
                    "parameter_missing",
                    "public_key is required to rotate a secret key.",
                )
            if key.livemode:
                reveal["encrypted_secret"] = _encrypt(new.secret, public_key)
        state.keys[new.id] = new
        key.expires_at = now + minutes * 60
        key.rejection_lag = state.rejection_lag
        state.rotations.append(Rotation(key.id, new.id, now, minutes))
        logger.info("sandbox: rotated %s -> %s at %s", key.id, new.id, iso(now))
        return new.to_api(now, reveal=reveal)


def _encrypt(secret: str, public_key: dict[str, Any]) -> dict[str, Any]:
    pem = public_key.get("pem_key") or {}
    if pem.get("algorithm") != "RSA" or not isinstance(pem.get("data"), str):
        raise ApiError(
            400,
            "invalid_request_error",
            "parameter_invalid",
            "public_key.pem_key must be {algorithm: RSA, data: PEM}.",
        )
    try:
        loaded = load_pem_public_key(pem["data"].encode())
    except ValueError as exc:
        raise ApiError(
            400,
            "invalid_request_error",
            "parameter_invalid",
            "public_key.pem_key.data is not a PEM public key.",
        ) from exc
    if not isinstance(loaded, rsa.RSAPublicKey) or loaded.key_size < 2048:
        raise ApiError(
            400,
            "invalid_request_error",
            "parameter_invalid",
            "public_key must be an RSA key of at least 2048 bits.",
        )
    ciphertext = jwe.encrypt_compact(
        {"alg": "RSA-OAEP-256", "enc": "A256GCM"},
        secret.encode(),
        RSAKey.import_key(pem["data"]),
        algorithms=["RSA-OAEP-256", "A256GCM"],
    )
    return {
        "ciphertext": ciphertext,
        "format": "jwe_compact",
        "recipient_key_id": public_key.get("id"),
    }


def serve_in_thread(
    state: SandboxState, host: str, port: int
) -> tuple[SandboxServer, threading.Thread]:
    """Bind the server and run it on a daemon thread."""
    server = SandboxServer((host, port), state)
    # A short poll interval keeps stop() quick (tests start many sandboxes).
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="incident-sandbox",
        daemon=True,
    )
    thread.start()
    return server, thread
