"""The Stripe credential patterns and what each match means.

Pattern choices, checked against Stripe's documentation and established scanners:

* Alphabet ``[0-9A-Za-z]`` after the ``sk_``/``rk_``/``pk_`` + ``live_``/``test_``
  prefix: every documented key and every key the API returns uses it.
* Length 20..247 after the prefix. Legacy keys carry 24 characters, current keys
  about 99 (107 in all); Stripe documents keys of up to 255 characters, and the
  prefix takes 8 of them. trufflehog's Stripe detector uses ``{20,247}`` for the same
  reason. Rules that stop at 24 (detect-secrets, many YARA rules) or at 99 / 32
  (gitleaks ``{10,99}``, older ``{10,32}``) capture a truncated key, so rolling or
  purging by that value would miss the real one.
* No required trailing character: a key ends where the alphabet ends, so
  ``sk_live_…&``, ``…)`` and ``…,`` all match (gitleaks' unique-token wrapper demands
  a delimiter from a fixed set and misses some).
* Test-mode and restricted keys are secrets too (``rk_`` is absent from several
  rules, ``_test_`` from detect-secrets').
* ``whsec_``: Stripe's webhook signing secrets are base64 text, 32 characters in the
  Dashboard and 64 hex characters from ``stripe listen``; we accept 24..120 of the
  base64 alphabet with optional padding. gitleaks and detect-secrets have no rule.
* ``pk_`` keys are publishable (meant for browsers): reported only on request.
"""

from __future__ import annotations

import re
from enum import StrEnum


class KeyKind(StrEnum):
    """What a Stripe credential is."""

    SECRET_KEY = "secret_key"
    RESTRICTED_KEY = "restricted_key"
    WEBHOOK_SECRET = "webhook_secret"
    PUBLISHABLE_KEY = "publishable_key"

    @property
    def is_secret(self) -> bool:
        """True for credentials that grant access (everything but publishable)."""
        return self is not KeyKind.PUBLISHABLE_KEY


class Mode(StrEnum):
    """Stripe mode encoded in the key's prefix (webhook secrets carry none)."""

    LIVE = "live"
    TEST = "test"
    UNKNOWN = "unknown"


# Bytes pattern: blobs are scanned as bytes so that binary files and any encoding
# that keeps ASCII intact (UTF-8, Latin-1, Shift-JIS...) need no decoding at all.
KEY_PATTERN = re.compile(
    rb"(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{20,247}(?![0-9A-Za-z])"
    rb"|whsec_[A-Za-z0-9+/]{24,120}={0,2}(?![A-Za-z0-9+/=])"
)

# Key-shaped text that is plainly not a key: listed by --show-ignored, never reported.
PLACEHOLDER_PATTERN = re.compile(
    rb"(?:(?:sk|rk|pk)_(?:live|test)_|whsec_)"
    rb"(?:\.{3}|\xe2\x80\xa6|<[^>\n]{1,40}>|\*{3,}|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?"
    rb"|\{\{[^}\n]{1,40}\}\}|\[[^\]\n]{1,40}\]|[Xx]{3,}[0-9A-Za-z]*"
    rb"|(?:YOUR|your|Your)[_A-Za-z0-9-]*)"
)

_PREFIXES: dict[str, tuple[KeyKind, Mode]] = {
    "sk_live_": (KeyKind.SECRET_KEY, Mode.LIVE),
    "sk_test_": (KeyKind.SECRET_KEY, Mode.TEST),
    "rk_live_": (KeyKind.RESTRICTED_KEY, Mode.LIVE),
    "rk_test_": (KeyKind.RESTRICTED_KEY, Mode.TEST),
    "pk_live_": (KeyKind.PUBLISHABLE_KEY, Mode.LIVE),
    "pk_test_": (KeyKind.PUBLISHABLE_KEY, Mode.TEST),
}


def classify(secret: str) -> tuple[KeyKind, Mode]:
    """Return the kind and mode of a credential that matched KEY_PATTERN."""
    if secret.startswith("whsec_"):
        return KeyKind.WEBHOOK_SECRET, Mode.UNKNOWN
    return _PREFIXES[secret[:8]]


def is_key(text: str) -> bool:
    """True when text is exactly one Stripe credential."""
    return KEY_PATTERN.fullmatch(text.encode("ascii", "replace")) is not None
