"""Finding Stripe credentials in bytes: patterns, decoders and placeholder filters."""

from incident.detect.content import KeyMatch, scan_bytes
from incident.detect.rules import KeyKind, Mode, classify

__all__ = ["KeyKind", "KeyMatch", "Mode", "classify", "scan_bytes"]
