"""The one place that decides how a secret may be shown: redacted, or fingerprinted.

No other module formats a secret for humans. A logging filter adds a second guard so a
key that slips into a log message is masked before any handler sees it.
"""

from __future__ import annotations

import hashlib
import logging
import re

# Loose on purpose: the guard must catch anything that looks like a Stripe secret,
# including forms the detector would later dismiss as placeholders.
# No left boundary: a key glued to a word (key_sk_live_…, abcsk_live_… in a branch
# name) is still a key to hide, even where the detector would not report it.
_SECRET_SHAPE = re.compile(
    r"((?:sk|rk|pk)_(?:live|test)_|whsec_)([0-9A-Za-z+/=]{8,})"
)


def fingerprint(secret: str | bytes) -> str:
    """Return the SHA-256 hex digest of the exact secret text: a key's identity."""
    data = secret.encode() if isinstance(secret, str) else secret
    return hashlib.sha256(data).hexdigest()


def short_fingerprint(secret_fingerprint: str) -> str:
    """Return the first 12 hex digits of a fingerprint, for tables and messages."""
    return secret_fingerprint[:12]


def redact(secret: str) -> str:
    """Return the prefix and last four characters, e.g. ``sk_live_…wXyZ``."""
    match = re.match(r"((?:sk|rk|pk)_(?:live|test)_|whsec_)", secret)
    prefix = match.group(1) if match else ""
    body = secret[len(prefix) :]
    if len(body) <= 8:
        return f"{prefix}…"
    return f"{prefix}…{body[-4:]}"


# scheme://user:password@host, or scheme://token@host: a remote URL can carry a
# hosting token (https://deploy:ghp_…@github.com/…), as secret as any key.
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/@\s:]+)"
    r"(?::(?P<password>[^/@\s]*))?@"
)
# A user part this long with no password is a token, not a login name.
_TOKEN_AS_USER = 16


def mask_url_credentials(text: str) -> str:
    """Hide the password (or token) in every URL of text, keep the rest."""

    def mask(match: re.Match[str]) -> str:
        scheme, user = match.group("scheme"), match.group("user")
        if match.group("password") is not None:
            return f"{scheme}{user}:***@"
        if len(user) >= _TOKEN_AS_USER:
            return f"{scheme}***@"
        return match.group(0)

    return _URL_CREDENTIALS.sub(mask, text)


def redact_text(text: str) -> str:
    """Mask every Stripe-secret-shaped substring of text, and URL credentials."""
    return mask_url_credentials(_SECRET_SHAPE.sub(lambda m: redact(m.group(0)), text))


class RedactingFilter(logging.Filter):
    """Logging filter that masks anything shaped like a Stripe secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact_text(message)
        if masked != message:
            record.msg = masked
            record.args = ()
        return True


class SecretView:
    """How a record that holds a ``secret`` shows it: fingerprint and redacted form.

    Mixed into the dataclasses that carry a secret value (findings, matches, leaked
    keys), which declare ``secret`` with ``field(repr=False)``.
    """

    secret: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.secret)

    @property
    def redacted(self) -> str:
        return redact(self.secret)
