"""Replace known secrets in bytes, in every encoding the scanner can see through.

The scanner (incident.detect.content) finds keys; this module removes known ones. It
works from the exact secret values, so it can use plain substring replacement for the
common forms and only falls back to regular expressions for the mixed forms
(percent-encoding, JSON / JavaScript escapes) when the blob holds the characters
those need.

Forms handled, with what replaces them:

* plain bytes -> the marker;
* UTF-16 LE / BE (any alignment) -> the marker in the same encoding;
* base64 (standard or URL-safe alphabet, padded or not, e.g. a Kubernetes Secret
  ``data:`` value) -> the run is decoded, the secret replaced inside (recursively,
  so a base64 JSON document with escapes works too) and encoded again;
* percent-encoded and escaped forms, also partly encoded (``sk%5Flive%5F…``) -> the
  marker;
* gzip streams -> inflated, replaced, compressed again (the gzip mtime is kept);
* zip archives and other binaries (a NUL byte in the first 8 KiB, not UTF-16 text)
  that hold a secret -> cannot be edited safely: the caller removes the file.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from incident.redact import redact

DEFAULT_MARKER = "***STRIPE-KEY-REMOVED***"
MAX_INFLATED_BYTES = 256 * 1024 * 1024
_MAX_DEPTH = 3
_BINARY_WINDOW = 8192
_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{16,}={0,2}")
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"


class BlobAction(StrEnum):
    """What the rewrite does with one blob."""

    UNCHANGED = "unchanged"
    REWRITTEN = "rewritten"
    RECOMPRESSED = "recompressed"  # gzip: inflated, replaced, compressed again
    REMOVE = "remove"  # zip or binary: no safe edit; the file leaves history


@dataclass(frozen=True)
class ReplaceOutcome:
    """The result of replacing secrets in one buffer.

    Attributes:
        data: the new bytes (the input itself when nothing changed or on REMOVE).
        action: what happened, see BlobAction.
        forms: the encodings that were replaced (plain, utf-16-le, base64, ...).
        reason: for REMOVE, why the content could not be edited.
    """

    data: bytes = field(repr=False)
    action: BlobAction
    forms: frozenset[str] = frozenset()
    reason: str | None = None

    @property
    def changed(self) -> bool:
        return self.action is not BlobAction.UNCHANGED


def _mixed_char(char: str) -> bytes:
    """Regex for one key character: itself, %XX, \\u00XX, \\xXX (\\/ for /)."""
    code = ord(char)
    hex_digits = f"{code:02x}"
    hex_class = "".join(f"[{d.lower()}{d.upper()}]" if d.isalpha() else d
                        for d in hex_digits)
    # One or more backslashes: JSON that holds escaped JSON doubles them.
    options = [re.escape(char), f"%{hex_class}", rf"\\+u00{hex_class}",
               rf"\\+x{hex_class}"]
    if char == "/":
        options.append(r"\\+/")
    return ("(?:" + "|".join(options) + ")").encode()


def _base64_needles(secret: bytes) -> set[bytes]:
    """Base64 text that any base64 encoding of secret contains, per alignment."""
    needles: set[bytes] = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + secret)
        first = (shift * 8 + 5) // 6 if shift else 0
        last = (len(secret) + shift) // 3 * 4
        core = encoded[first:last]
        needles.add(core)
        needles.add(core.replace(b"+", b"-").replace(b"/", b"_"))
    return needles


def encoded_needles(secret: str) -> dict[str, list[bytes]]:
    """Byte strings whose presence proves the secret is still stored, by form.

    Used by verification: a direct substring search, independent of the scanner.
    """
    raw = secret.encode("ascii")
    return {
        "plain": [raw],
        "utf-16-le": [secret.encode("utf-16-le")],
        "utf-16-be": [secret.encode("utf-16-be")],
        "base64": sorted(_base64_needles(raw)),
        "url": [
            raw.replace(b"_", b"%5F"),
            raw.replace(b"_", b"%5f"),
            "".join(f"%{b:02X}" for b in raw).encode(),
            "".join(f"%{b:02x}" for b in raw).encode(),
        ],
        "json-escape": [
            "".join(f"\\u{b:04x}" for b in raw).encode(),
            "".join(f"\\u{b:04X}" for b in raw).encode(),
            raw.replace(b"_", b"\\u005f"),
            raw.replace(b"_", b"\\u005F"),
            raw.replace(b"/", b"\\/"),
        ],
    }


def is_binary(data: bytes) -> bool:
    """True for content git would call binary and that is not UTF-16 text."""
    window = data[:_BINARY_WINDOW]
    if b"\0" not in window:
        return False
    return not _looks_like_utf16(window)


def _looks_like_utf16(window: bytes) -> bool:
    if window[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return True
    even, odd = window[0::2], window[1::2]
    # ASCII text in UTF-16 has a NUL in every other byte.
    return any(
        bool(half) and half.count(0) >= 0.9 * len(half) for half in (even, odd)
    )


def _replace_utf16(data: bytes, needle: bytes, replacement: bytes,
                   aligned: bool) -> tuple[bytes, int]:
    """Replace needle where it starts at an even offset (or anywhere)."""
    if not aligned:
        return data.replace(needle, replacement), data.count(needle)
    parts: list[bytes] = []
    start = hits = 0
    position = data.find(needle)
    while position != -1:
        if position % 2 == 0:
            parts += [data[start:position], replacement]
            start = position + len(needle)
            hits += 1
            position = data.find(needle, start)
        else:
            position = data.find(needle, position + 1)
    parts.append(data[start:])
    return b"".join(parts), hits


class SecretReplacer:
    """Replace a fixed set of secrets by a marker, in every supported encoding.

    Args:
        secrets: the exact secret values (as found by the scanner).
        marker: the text that replaces each occurrence.
    """

    def __init__(self, secrets: Iterable[str], marker: str = DEFAULT_MARKER) -> None:
        # Longest first, so a key that contains another key is replaced whole.
        values = sorted({s for s in secrets if s}, key=len, reverse=True)
        if not values:
            raise ValueError("no secrets to replace")
        self.marker = marker
        self._values = values
        marker_bytes = marker.encode("utf-8")
        self._plain = [(v.encode("ascii"), marker_bytes) for v in values]
        self._utf16 = [
            (v.encode(codec), marker.encode(codec), codec)
            for v in values
            for codec in ("utf-16-le", "utf-16-be")
        ]
        self._base64 = sorted({n for v in values for n in
                               _base64_needles(v.encode("ascii"))})
        self._mixed = re.compile(
            b"|".join(b"".join(_mixed_char(c) for c in v) for v in values)
        )
        self._marker_bytes = marker_bytes
        # A partly encoded key either encodes its underscore (%5F, \u005f, \x5f)
        # or keeps its prefix (sk_live_) in clear: only then is the regex run.
        self._mixed_needles = sorted(
            {b"%5F", b"%5f", b"\\u00", b"\\x", b"\\/"}
            | {v.encode("ascii")[: v.index("_", 3) + 1] for v in values}
        )
        # Cheap prefilter: every form of every secret contains one of these.
        self._quick = (
            [p for p, _ in self._plain]
            + [u for u, _, _ in self._utf16]
            + self._base64
            + self._mixed_needles
        )

    def mask(self, text: str) -> str:
        """Text for humans: every known secret in it shown redacted."""
        for secret in self._values:
            text = text.replace(secret, redact(secret))
        return text

    def might_contain(self, data: bytes) -> bool:
        """Fast check: could data hold one of the secrets in a form we handle?"""
        if data[:2] == GZIP_MAGIC or data[:4] == ZIP_MAGIC:
            return True
        return any(needle in data for needle in self._quick)

    def replace(self, data: bytes) -> ReplaceOutcome:
        """Replace every secret in one blob's content and say what was done."""
        if not self.might_contain(data):
            return ReplaceOutcome(data, BlobAction.UNCHANGED)
        if data[:2] == GZIP_MAGIC:
            outcome = self._replace_gzip(data)
            if outcome is not None:
                return outcome
        if data[:4] == ZIP_MAGIC and self._zip_holds_secret(data):
            return ReplaceOutcome(data, BlobAction.REMOVE, frozenset({"zip"}),
                                  "zip archive member holds a key")
        new, forms = self._replace_text(data, 0)
        if not forms:
            return ReplaceOutcome(data, BlobAction.UNCHANGED)
        if is_binary(data):
            return ReplaceOutcome(data, BlobAction.REMOVE, frozenset(forms),
                                  "binary file holds a key")
        return ReplaceOutcome(new, BlobAction.REWRITTEN, frozenset(forms))

    def replace_text(self, data: bytes) -> bytes:
        """Replace secrets in a message or a ref name (never removes anything)."""
        if not self.might_contain(data):
            return data
        return self._replace_text(data, 0)[0]

    def _replace_text(self, data: bytes, depth: int) -> tuple[bytes, set[str]]:
        forms: set[str] = set()
        for needle, replacement in self._plain:
            if needle in data:
                data = data.replace(needle, replacement)
                forms.add("plain")
        # UTF-16 text starts at an even offset (after a BOM, too), and a key in one
        # byte order also matches the other one byte off: aligned hits go first.
        for aligned in (True, False):
            for needle, replacement, codec in self._utf16:
                if needle in data:
                    data, hits = _replace_utf16(data, needle, replacement, aligned)
                    if hits:
                        forms.add(codec)
        if (b"%" in data or b"\\" in data) and any(
                n in data for n in self._mixed_needles):
            data, count = self._mixed.subn(self._marker_bytes, data)
            if count:
                forms.add("url-or-escape")
        if depth < _MAX_DEPTH and any(n in data for n in self._base64):
            data, changed = self._replace_base64(data, depth)
            if changed:
                forms.add("base64")
        return data, forms

    def _replace_base64(self, data: bytes, depth: int) -> tuple[bytes, bool]:
        changed = False

        def one_run(match: re.Match[bytes]) -> bytes:
            nonlocal changed
            run = match.group()
            if not any(n in run for n in self._base64):
                return run
            rewritten = self._rewrite_base64_run(run, depth)
            if rewritten is None:
                return run
            changed = True
            return rewritten

        return _BASE64_RUN.sub(one_run, data), changed

    def _rewrite_base64_run(self, run: bytes, depth: int) -> bytes | None:
        """Decode run (trying each alignment), replace inside, encode again."""
        padded = run.endswith(b"=")
        urlsafe = b"-" in run or b"_" in run
        stripped = run.rstrip(b"=")
        for skip in range(4):
            body = stripped[skip:]
            if len(body) % 4 == 1:
                continue
            try:
                decoded = base64.b64decode(
                    (body + b"=" * (-len(body) % 4)).replace(b"-", b"+")
                    .replace(b"_", b"/"),
                    validate=True,
                )
            except (binascii.Error, ValueError):
                continue
            new_decoded, forms = self._replace_text(decoded, depth + 1)
            if not forms:
                continue
            encoded = base64.b64encode(new_decoded)
            if urlsafe:
                encoded = encoded.replace(b"+", b"-").replace(b"/", b"_")
            if not padded:
                encoded = encoded.rstrip(b"=")
            return stripped[:skip] + encoded
        return None

    def _replace_gzip(self, data: bytes) -> ReplaceOutcome | None:
        """Inflate, replace, compress again; None when data is not a whole gzip."""
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            inflated = inflater.decompress(data, MAX_INFLATED_BYTES)
        except zlib.error:
            return None
        if inflater.unconsumed_tail or not inflater.eof:
            return ReplaceOutcome(data, BlobAction.REMOVE, frozenset({"gzip"}),
                                  "gzip stream too large or truncated to edit")
        inner = self.replace(inflated)
        if not inner.changed:
            return ReplaceOutcome(data, BlobAction.UNCHANGED)
        if inner.action is BlobAction.REMOVE:
            return ReplaceOutcome(data, BlobAction.REMOVE, inner.forms,
                                  f"gzip content: {inner.reason}")
        # Keep the original mtime so the only difference is the replaced text.
        mtime = struct.unpack("<I", data[4:8])[0] if len(data) >= 8 else 0
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=mtime) as handle:
            handle.write(inner.data)
        return ReplaceOutcome(buffer.getvalue(), BlobAction.RECOMPRESSED,
                              frozenset({"gzip", *inner.forms}))

    def _zip_holds_secret(self, data: bytes) -> bool:
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, ValueError, OSError):
            return False
        for info in archive.infolist():
            try:
                with archive.open(info) as member:
                    body = member.read(MAX_INFLATED_BYTES)
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError,
                    zlib.error, EOFError):
                # An encrypted or broken member cannot be checked: treat it as
                # holding a key only if its raw bytes do.
                continue
            if self.replace(body).changed:
                return True
        return False
