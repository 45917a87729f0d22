"""The one-rotation RSA key pair and decrypting the JWE that carries a new secret."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from incident.errors import StripeApiError

# Stripe encrypts with RSA-OAEP or RSA-OAEP-256 and A256GCM; accept nothing else, so
# a downgraded or tampered token is refused rather than half-trusted.
JWE_ALGORITHMS = ["RSA-OAEP", "RSA-OAEP-256", "A256GCM"]
RSA_BITS = 3072


def generate_private_key_pem() -> bytes:
    """A fresh RSA private key (PKCS#8 PEM, unencrypted) for one rotation."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(private_pem: bytes) -> str:
    """The public half, as the PEM text Stripe's ``public_key.pem_key.data`` takes."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the rotation key is not an RSA key")
    return (
        key.public_key()
        .public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode()
    )


def decrypt_secret(ciphertext: str, private_pem: bytes) -> str:
    """Decrypt a compact JWE with the rotation's private key.

    Raises:
        StripeApiError: the token is malformed, uses another algorithm, or was not
            encrypted to this key.
    """
    if ciphertext.count(".") != 4:
        raise StripeApiError("the new key's encrypted_secret is not a compact JWE")
    try:
        result = jwe.decrypt_compact(
            ciphertext, RSAKey.import_key(private_pem), algorithms=JWE_ALGORITHMS
        )
    except (JoseError, ValueError) as exc:
        raise StripeApiError(
            f"cannot decrypt the new key ({type(exc).__name__})",
            "The response was not encrypted to this rotation's public key; "
            "check the key in the Dashboard before rotating again.",
        ) from None
    if result.protected.get("enc") != "A256GCM":
        raise StripeApiError("the new key was encrypted with an unexpected algorithm")
    if result.plaintext is None:
        raise StripeApiError("the new key's encrypted_secret is empty")
    return result.plaintext.decode()


def reveal_secret(response: dict[str, Any], private_pem: bytes) -> str:
    """The new secret from a rotate response: plaintext (test mode) or JWE (live).

    Raises:
        StripeApiError: the response carries no secret, or one that does not match
            its own redacted form.
    """
    secret_key = response.get("secret_key") or {}
    if secret_key.get("token"):
        new_secret = str(secret_key["token"])
    elif secret_key.get("encrypted_secret"):
        new_secret = decrypt_secret(
            secret_key["encrypted_secret"]["ciphertext"], private_pem
        )
    else:
        raise StripeApiError(
            "the rotate response carries no new secret",
            "Reveal the new key in the Dashboard; do not rotate again.",
        )
    shown = str(secret_key.get("secret_token_redacted") or "")
    if shown and not shown.endswith(new_secret[-4:]):
        raise StripeApiError("the decrypted key does not match its redacted form")
    return new_secret
