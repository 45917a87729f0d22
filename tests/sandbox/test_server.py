"""The offline Stripe sandbox over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwe
from joserfc.jwk import RSAKey

from incident.sandbox import SandboxHandle, derive_key_id, seed_state, start_sandbox
from tests.helpers.gitrepo import fake_key
from tests.sandbox.fixtures import LIVE_PREFIX, RESTRICTED_LIVE_PREFIX

PREVIEW = {"Stripe-Version": "2026-10-14.preview"}


def call(
    sandbox: SandboxHandle,
    method: str,
    path: str,
    key: str,
    body: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    sent = {
        "Authorization": f"Bearer {key}",
        **(headers if headers is not None else PREVIEW),
    }
    if idempotency_key:
        sent["Idempotency-Key"] = idempotency_key
    return requests.request(
        method,
        sandbox.url + path,
        headers=sent,
        data=json.dumps(body) if body is not None else None,
        timeout=10,
    )


def rsa_pair() -> tuple[bytes, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, public.decode()


def rotate_body(public_pem: str, minutes: int = 0) -> dict[str, Any]:
    return {
        "expire_current_key_in_minutes": minutes,
        "public_key": {
            "id": "pk1",
            "pem_key": {"algorithm": "RSA", "data": public_pem},
        },
    }


def test_account_live_key_answers(sandbox: SandboxHandle, live_key: str) -> None:
    """A seeded live key reads /v1/account."""
    response = call(sandbox, "GET", "/v1/account", live_key)

    assert response.status_code == 200
    assert response.json()["id"] == sandbox.state.account_id


def test_account_unknown_key_is_401(sandbox: SandboxHandle) -> None:
    """An unknown key gets Stripe's authentication error, masked."""
    unknown = fake_key(LIVE_PREFIX, seed="nobody")

    response = call(sandbox, "GET", "/v1/account", unknown)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_invalid"
    assert unknown not in response.text


def test_account_restricted_key_is_403() -> None:
    """A restricted key authenticates but lacks the account permission."""
    restricted = fake_key(RESTRICTED_LIVE_PREFIX, seed="rk")
    with start_sandbox([restricted]) as sandbox:
        response = call(sandbox, "GET", "/v1/account", restricted)

    assert response.status_code == 403


def test_seed_ids_are_deterministic(live_key: str) -> None:
    """Seeding the same secrets twice gives the same account and key ids."""
    first, second = seed_state([live_key]), seed_state([live_key])

    assert first.account_id == second.account_id
    assert list(first.keys) == list(second.keys) == [derive_key_id(live_key)]


def test_list_paginates_with_next_page_url(live_key: str) -> None:
    """limit=2 over five live keys takes three pages linked by next_page_url."""
    keys = [fake_key(LIVE_PREFIX, seed=f"page{i}") for i in range(5)]
    with start_sandbox(keys) as sandbox:
        seen: list[str] = []
        path: str | None = "/v2/iam/api_keys?limit=2"
        pages = []
        while path:
            page = call(sandbox, "GET", path, keys[0]).json()
            pages.append(page)
            seen += [item["id"] for item in page["data"]]
            path = page["next_page_url"]

    assert len(pages) == 3
    assert sorted(seen) == sorted(derive_key_id(k) for k in keys)
    assert pages[0]["previous_page_url"] is None
    assert pages[1]["previous_page_url"] is not None
    assert pages[0]["data"][0]["object"] == "v2.iam.api_key"


def test_list_hides_other_mode_and_live_tokens(
    sandbox: SandboxHandle, live_key: str, test_key: str
) -> None:
    """A live key lists live keys only, redacted; a test key sees test tokens."""
    live = call(sandbox, "GET", "/v2/iam/api_keys", live_key).json()["data"]
    test = call(sandbox, "GET", "/v2/iam/api_keys", test_key).json()["data"]

    assert all(item["livemode"] for item in live)
    assert all("token" not in item["secret_key"] for item in live)
    assert f"...{live_key[-4:]}" in {
        i["secret_key"]["secret_token_redacted"][-7:] for i in live
    }
    assert test_key in {item["secret_key"]["token"] for item in test}


def test_v2_needs_preview_version(sandbox: SandboxHandle, live_key: str) -> None:
    """The API keys endpoints refuse a non-preview Stripe-Version."""
    response = call(
        sandbox,
        "GET",
        "/v2/iam/api_keys",
        live_key,
        headers={"Stripe-Version": "2026-10-28.endive"},
    )

    assert response.status_code == 400


def test_rotate_live_encrypts_new_secret_to_public_key(
    sandbox: SandboxHandle, live_key: str
) -> None:
    """A live rotation returns a JWE that decrypts to the minted key; the old dies."""
    private_pem, public_pem = rsa_pair()
    key_id = derive_key_id(live_key)

    response = call(
        sandbox,
        "POST",
        f"/v2/iam/api_keys/{key_id}/rotate",
        live_key,
        rotate_body(public_pem),
        idempotency_key="k1",
    )

    body = response.json()
    token = body["secret_key"]["encrypted_secret"]
    assert token["format"] == "jwe_compact" and token["recipient_key_id"] == "pk1"
    plain = jwe.decrypt_compact(
        token["ciphertext"],
        RSAKey.import_key(private_pem),
        algorithms=["RSA-OAEP-256", "A256GCM"],
    ).plaintext
    assert plain is not None and plain.decode() == sandbox.state.keys[body["id"]].secret
    assert "token" not in body["secret_key"]
    assert call(sandbox, "GET", "/v1/account", live_key).status_code == 401
    assert len(sandbox.state.rotations_of(key_id)) == 1


def test_rotate_test_mode_returns_plaintext(
    sandbox: SandboxHandle, test_key: str
) -> None:
    """A test-mode rotation carries the new token in plaintext."""
    _, public_pem = rsa_pair()

    body = call(
        sandbox,
        "POST",
        f"/v2/iam/api_keys/{derive_key_id(test_key)}/rotate",
        test_key,
        rotate_body(public_pem),
        idempotency_key="t1",
    ).json()

    assert body["secret_key"]["token"] == sandbox.state.keys[body["id"]].secret


def test_rotate_grace_keeps_old_key(sandbox: SandboxHandle, live_key: str) -> None:
    """With expire_current_key_in_minutes the old key keeps working."""
    _, public_pem = rsa_pair()

    call(
        sandbox,
        "POST",
        f"/v2/iam/api_keys/{derive_key_id(live_key)}/rotate",
        live_key,
        rotate_body(public_pem, minutes=30),
        idempotency_key="g1",
    )

    assert call(sandbox, "GET", "/v1/account", live_key).status_code == 200


@pytest.mark.parametrize("minutes", [-1, 10081])
def test_rotate_refuses_grace_out_of_range(
    sandbox: SandboxHandle, live_key: str, minutes: int
) -> None:
    """Stripe's limit is 0..10080 minutes."""
    _, public_pem = rsa_pair()

    response = call(
        sandbox,
        "POST",
        f"/v2/iam/api_keys/{derive_key_id(live_key)}/rotate",
        live_key,
        rotate_body(public_pem, minutes),
        idempotency_key="r",
    )

    assert response.status_code == 400
    assert sandbox.state.rotations == []


def test_idempotent_replay_returns_saved_response(
    sandbox: SandboxHandle, live_key: str
) -> None:
    """The same idempotency key and body replay the first response: one rotation."""
    _, public_pem = rsa_pair()
    operator = sandbox.add_operator_key("live")
    path = f"/v2/iam/api_keys/{derive_key_id(live_key)}/rotate"

    first = call(sandbox, "POST", path, operator, rotate_body(public_pem), "same")
    again = call(sandbox, "POST", path, operator, rotate_body(public_pem), "same")
    other = call(sandbox, "POST", path, operator, rotate_body(public_pem, 5), "same")

    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (
        other.status_code == 400
        and other.json()["error"]["type"] == "idempotency_error"
    )
    assert len(sandbox.state.rotations) == 1


def test_expire_makes_key_fail(sandbox: SandboxHandle, live_key: str) -> None:
    """POST .../expire invalidates the key at once."""
    operator = sandbox.add_operator_key("live")

    response = call(
        sandbox,
        "POST",
        f"/v2/iam/api_keys/{derive_key_id(live_key)}/expire",
        operator,
        {},
        "e1",
    )

    assert response.json()["status"] == "expired"
    assert call(sandbox, "GET", "/v1/account", live_key).status_code == 401


@pytest.mark.parametrize("kind,status", [("401", 401), ("429", 429), ("500", 500)])
def test_fault_answers_once(
    sandbox: SandboxHandle, live_key: str, kind: str, status: int
) -> None:
    """An injected error answers the next matching request only."""
    sandbox.inject(kind, path_contains="/v1/account")

    first = call(sandbox, "GET", "/v1/account", live_key)
    second = call(sandbox, "GET", "/v1/account", live_key)

    assert (first.status_code, second.status_code) == (status, 200)


def test_fault_drop_after_apply(sandbox: SandboxHandle, live_key: str) -> None:
    """The connection drops, yet the rotation happened and its response is saved."""
    _, public_pem = rsa_pair()
    sandbox.inject("drop-after-apply", method="POST")
    path = f"/v2/iam/api_keys/{derive_key_id(live_key)}/rotate"
    operator = sandbox.add_operator_key("live")

    with pytest.raises(requests.ConnectionError):
        call(sandbox, "POST", path, operator, rotate_body(public_pem), "d1")
    replay = call(sandbox, "POST", path, operator, rotate_body(public_pem), "d1")

    assert len(sandbox.state.rotations) == 1
    assert replay.json()["id"] == sandbox.state.rotations[0].new_key_id


def test_fault_slow_delays(sandbox: SandboxHandle, live_key: str) -> None:
    """A slow fault holds the answer for its delay."""
    sandbox.inject("slow", delay=0.3)

    with pytest.raises(requests.Timeout):
        requests.get(
            sandbox.url + "/v1/account",
            headers={"Authorization": f"Bearer {live_key}"},
            timeout=0.1,
        )


def test_rejection_lag_delays_expiry(sandbox: SandboxHandle, live_key: str) -> None:
    """With a rejection lag, an expired key still works for a moment."""
    sandbox.state.rejection_lag = 30
    operator = sandbox.add_operator_key("live")

    call(
        sandbox,
        "POST",
        f"/v2/iam/api_keys/{derive_key_id(live_key)}/expire",
        operator,
        {},
        "lag",
    )

    assert call(sandbox, "GET", "/v1/account", live_key).status_code == 200
