"""Decide when a key-shaped string is a placeholder or a published example.

These run only on strings the key pattern already matched, so they may be slow; the
cost of a wrong "placeholder" verdict is a missed leak, so each test is narrow.
"""

from __future__ import annotations

import itertools
from collections import Counter

from incident.redact import fingerprint

# Example keys printed in Stripe's own documentation and API reference, by SHA-256
# fingerprint so that no key-shaped literal sits in our tree. Redacted forms, in order:
# sk_test_…p7dc (API reference), pk_test_…I7jx (Checkout/Elements guides),
# sk_test_…lfQ2 and pk_test_…XMUh (older guides), sk_test_…x4sd (API reference).
STRIPE_EXAMPLE_FINGERPRINTS: frozenset[str] = frozenset(
    {
        "2cafc0970149a84f3b9e62eaf169f36f59907a3b3e31f7b82e68c69cd27f7326",
        "b1471f544ceeea31333bde7e1ecbaad6eac0d4a749412ad29bd66ef895b81c6b",
        "f2d6ca16515033e5dce14eba840b979d27b5cbae24bb3e5bf484339667f86397",
        "5895b89c8fb33402a5bfc23aad5aaf863fbb438a51e1a0bb02b0ce618c8fdf9d",
        "7e8de44ea9ecf6d53415c90f5b249a8591f7abafbf7d65a2c0d855afeca3ec09",
    }
)

_PLACEHOLDER_WORDS = (
    "xxxx",
    "your",
    "example",
    "placeholder",
    "dummy",
    "redacted",
    "changeme",
    "replace",
    "insert",
)


def _body(secret: str) -> str:
    return secret[6:] if secret.startswith("whsec_") else secret[8:]


def _is_periodic(body: str) -> bool:
    """True when body repeats a unit of at most eight characters."""
    for period in range(1, 9):
        if len(body) >= 2 * period and body == (body[:period] * len(body))[: len(body)]:
            return True
    return False


def _sequential_share(body: str) -> float:
    """Share of the body covered by runs of at least four consecutive characters."""
    covered = 0
    run = 1
    for previous, current in itertools.pairwise(body):
        if ord(current) - ord(previous) == 1:
            run += 1
            continue
        if run >= 4:
            covered += run
        run = 1
    if run >= 4:
        covered += run
    return covered / len(body)


def placeholder_reason(secret: str) -> str | None:
    """Return why secret is not a real key, or None if it must be treated as one."""
    if fingerprint(secret) in STRIPE_EXAMPLE_FINGERPRINTS:
        return "example key from Stripe's documentation"

    body = _body(secret)
    lowered = body.lower()
    for word in _PLACEHOLDER_WORDS:
        if word in lowered:
            return f"placeholder text ({word!r})"
    if _is_periodic(body):
        return "repeated characters"
    counts = Counter(body)
    if len(counts) <= 4 or counts.most_common(1)[0][1] > len(body) // 2:
        return "repeated characters"
    if _sequential_share(body) >= 0.6:
        return "sequential characters"
    return None
