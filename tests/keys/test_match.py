"""Matching a leaked value to key objects, and decrypting the JWE, without HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jwe
from joserfc.jwk import RSAKey

from incident.errors import StripeApiError
from incident.keys import LeakedKey, match_key_objects
from incident.keys.crypto import (
    decrypt_secret,
    generate_private_key_pem,
    public_key_pem,
)
from tests.helpers.gitrepo import fake_key
from tests.sandbox.fixtures import LIVE_PREFIX, TEST_PREFIX


def key_object(
    key_id: str,
    redacted: str,
    *,
    livemode: bool = True,
    token: str | None = None,
    type_: str = "secret_key",
) -> dict[str, Any]:
    secret_key: dict[str, Any] = {"secret_token_redacted": redacted}
    if token:
        secret_key["token"] = token
    return {
        "id": key_id,
        "type": type_,
        "livemode": livemode,
        "status": "active",
        "secret_key": secret_key,
    }


def test_match_by_redacted_prefix_and_last_four() -> None:
    """A live key matches the object whose redacted token has its prefix and end."""
    leaked = fake_key(LIVE_PREFIX, seed="m")
    objects = [
        key_object("ak_1", f"{LIVE_PREFIX}...{leaked[-4:]}"),
        key_object("ak_2", f"{LIVE_PREFIX}...zzzz"),
        key_object("ak_3", f"rk_live_...{leaked[-4:]}"),
        key_object("ak_4", f"{LIVE_PREFIX}...{leaked[-4:]}", livemode=False),
        key_object("ak_5", f"{LIVE_PREFIX}...{leaked[-4:]}", type_="publishable_key"),
    ]

    matched = match_key_objects(LeakedKey.from_secret(leaked), objects)

    assert [o["id"] for o in matched] == ["ak_1"]


def test_match_test_mode_token_is_exact() -> None:
    """A test-mode object carries its token: only the exact value matches."""
    leaked = fake_key(TEST_PREFIX, seed="t")
    lookalike = fake_key(TEST_PREFIX, seed="u")[:-4] + leaked[-4:]
    redacted = f"{TEST_PREFIX}...{leaked[-4:]}"
    objects = [
        key_object("ak_a", redacted, livemode=False, token=lookalike),
        key_object("ak_b", redacted, livemode=False, token=leaked),
    ]

    matched = match_key_objects(LeakedKey.from_secret(leaked), objects)

    assert [o["id"] for o in matched] == ["ak_b"]


@pytest.mark.parametrize("alg", ["RSA-OAEP", "RSA-OAEP-256"])
def test_decrypt_secret_accepts_stripe_algorithms(alg: str) -> None:
    """Both OAEP variants with A256GCM decrypt."""
    private_pem = generate_private_key_pem()
    secret = fake_key(seed="jwe")
    token = jwe.encrypt_compact(
        {"alg": alg, "enc": "A256GCM"},
        secret.encode(),
        RSAKey.import_key(public_key_pem(private_pem)),
        algorithms=[alg, "A256GCM"],
    )

    assert decrypt_secret(token, private_pem) == secret


def test_decrypt_secret_refuses_other_key_and_other_enc() -> None:
    """A token for another key, or with another content cipher, is refused."""
    mine, theirs = generate_private_key_pem(), generate_private_key_pem()
    secret = fake_key(seed="jwe2")
    wrong_key = jwe.encrypt_compact(
        {"alg": "RSA-OAEP-256", "enc": "A256GCM"},
        secret.encode(),
        RSAKey.import_key(public_key_pem(theirs)),
        algorithms=["RSA-OAEP-256", "A256GCM"],
    )
    wrong_enc = jwe.encrypt_compact(
        {"alg": "RSA-OAEP-256", "enc": "A128GCM"},
        secret.encode(),
        RSAKey.import_key(public_key_pem(mine)),
        algorithms=["RSA-OAEP-256", "A128GCM"],
    )

    for token in (wrong_key, wrong_enc, "not.a.jwe"):
        with pytest.raises(StripeApiError) as caught:
            decrypt_secret(token, mine)
        assert secret not in str(caught.value)
