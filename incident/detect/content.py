"""Scan one object's bytes for Stripe credentials, also where an encoding hides them.

The layers, cheapest first. Each decoder runs only when its own needle is present in
the raw bytes, so a blob without any needle costs a handful of substring searches:

* plain bytes (UTF-8, Latin-1, binaries: anything that keeps ASCII as is);
* UTF-16 (either byte order, with or without BOM);
* base64 runs (a Kubernetes Secret's ``data:``, a base64 ``.env``);
* percent-encoding and JSON / JavaScript string escapes, decoded line by line so
  that line numbers stay those of the file;
* one level into gzip streams and zip members, where every layer above runs again.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import io
import re
import urllib.parse
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from incident.detect.placeholders import placeholder_reason
from incident.detect.rules import (
    KEY_PATTERN,
    PLACEHOLDER_PATTERN,
)
from incident.detect.secret import ClassifiedSecret

# A decompressed member or stream larger than this is scanned up to this size and
# reported as truncated: a zip bomb must not take the scanner down.
MAX_INFLATED_BYTES = 256 * 1024 * 1024
MAX_ZIP_MEMBERS = 10_000

PLAIN_NEEDLES = (b"_live_", b"_test_", b"whsec_")
UTF16_NEEDLES = (
    "_live_".encode("utf-16-le")[:-1],
    "_test_".encode("utf-16-le")[:-1],
    "whsec_".encode("utf-16-le")[:-1],
)
URL_NEEDLE = b"%5"
ESCAPE_NEEDLES = (b"\\u00", b"\\x")


def _base64_needles() -> tuple[bytes, ...]:
    """Base64 text that any encoding of a key prefix must contain, per alignment."""
    needles: set[bytes] = set()
    for prefix in (b"k_live_", b"k_test_", b"whsec_"):
        for shift in range(3):
            encoded = base64.b64encode(b"\0" * shift + prefix)
            # Drop the characters that mix in bytes before the prefix, and the tail
            # that depends on bytes after it.
            first = (shift * 8 + 5) // 6 if shift else 0
            last = (len(prefix) + shift) // 3 * 4
            needles.add(encoded[first:last])
    return tuple(sorted(needles))


BASE64_NEEDLES = _base64_needles()
_ESCAPE = re.compile(rb"\\u00([0-9A-Fa-f]{2})|\\x([0-9A-Fa-f]{2})|\\/")

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class KeyMatch(ClassifiedSecret):
    """One occurrence of a credential (or a placeholder) inside one object.

    Attributes:
        secret: the exact text; never shown, never serialised.
        line: 1-based line in the object (in the member, for archives).
        encoding: how it was stored: plain, utf-16, base64, url, escape, with
            ``gzip+``/``zip+`` in front for compressed content.
        member: the archive member it was found in, if any.
        ignored: why it is not a real key (placeholder, documentation example), or
            None for a real finding.
    """

    secret: str = field(repr=False)
    line: int
    encoding: str = "plain"
    member: str | None = None
    ignored: str | None = None



PLAIN, UTF16, BASE64, URL, ESCAPE = "plain", "utf-16", "base64", "url", "escape"


def needed_layers(data: bytes) -> frozenset[str]:
    """Which decoders could find something in data (empty: nothing can be there).

    The portable prefilter: one substring search per needle. UTF-16 text always
    holds NUL bytes, so one memchr gates its needles.
    """
    layers = set()
    if any(n in data for n in PLAIN_NEEDLES):
        layers.add(PLAIN)
    if any(n in data for n in BASE64_NEEDLES):
        layers.add(BASE64)
    if URL_NEEDLE in data:
        layers.add(URL)
    if any(n in data for n in ESCAPE_NEEDLES):
        layers.add(ESCAPE)
    if b"\0" in data and any(n in data for n in UTF16_NEEDLES):
        layers.add(UTF16)
    return frozenset(layers)


def is_container(data: bytes) -> bool:
    """True for gzip and zip data, whose inflated content is scanned too."""
    return data[:2] == GZIP_MAGIC or data[:4] == ZIP_MAGIC


def has_needle(data: bytes) -> bool:
    """Could this object hold a key in any encoding we decode?"""
    return is_container(data) or bool(needed_layers(data))


def _line_at(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


class _Lines:
    """Line numbers of many offsets in one buffer, without recounting from the top."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.newlines: list[int] | None = None

    def at(self, offset: int) -> int:
        if self.newlines is None:
            self.newlines = [m.start() for m in re.finditer(b"\n", self.data)]
        return bisect.bisect_left(self.newlines, offset) + 1


def _occurrences(data: bytes, needle: bytes) -> Iterator[int]:
    """Every offset of needle in data, found with the C substring search."""
    start = data.find(needle)
    while start >= 0:
        yield start
        start = data.find(needle, start + 1)


_ALNUM = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_HEX = frozenset(b"0123456789ABCDEFabcdef")


def _has_left_boundary(data: bytes, start: int) -> bool:
    """True unless the key is glued to a word, as in ``disk_test_…``.

    A letter that ends an escape (``\\n``, ``\\u003d``, ``\\x3d``) or a
    percent-encoding (``%3D``) is a boundary too: the text before it was encoded.
    """
    if start == 0 or data[start - 1] not in _ALNUM:
        return True
    if start >= 2 and data[start - 2] == 0x5C:  # \n, \t, \r...
        return True
    if start >= 3 and data[start - 3] == 0x25 and data[start - 2] in _HEX:
        return True
    if start >= 4 and data[start - 4 : start - 2] == b"\\x":
        return True
    return start >= 6 and data[start - 6 : start - 4] == b"\\u"


def _plain(
    data: bytes, line_base: int | None = None, *, glued: bool = False
) -> Iterator[tuple[str, int]]:
    """Yield (secret, line) for every key in data, in order.

    The regex runs only where a needle is, never across the whole buffer: Python's
    engine cannot skip ahead on an alternation and would crawl over every byte.
    With glued, a key right after a letter counts too: decoded bytes have no words.
    """
    found: list[tuple[int, str]] = []
    for needle, back in ((b"_live_", 2), (b"_test_", 2), (b"whsec_", 0)):
        for offset in _occurrences(data, needle):
            start = offset - back
            if start < 0 or not (glued or _has_left_boundary(data, start)):
                continue
            match = KEY_PATTERN.match(data, start)
            if match:
                found.append((start, match.group().decode("ascii")))
    lines = _Lines(data) if line_base is None and len(found) > 2 else None
    for start, secret in sorted(found):
        if line_base is not None:
            yield secret, line_base
        else:
            yield secret, lines.at(start) if lines else _line_at(data, start)


def _placeholders(data: bytes) -> Iterator[tuple[str, int]]:
    for m in PLACEHOLDER_PATTERN.finditer(data):
        yield m.group().decode("ascii", "replace"), _line_at(data, m.start())


def _utf16(data: bytes) -> Iterator[tuple[str, int]]:
    for codec in ("utf-16-le", "utf-16-be"):
        for start in (0, 1):
            chunk = data[start:]
            chunk = chunk[: len(chunk) - len(chunk) % 2]
            text = chunk.decode(codec, "replace")
            if "_live_" not in text and "_test_" not in text and "whsec_" not in text:
                continue
            encoded = text.encode("utf-8", "replace")
            yield from _plain(encoded, glued=True)


# Enough base64 after a needle to hold the longest key (255 characters -> 340).
_BASE64_AFTER = re.compile(rb"[A-Za-z0-9+/_-]{0,360}={0,2}")
_BASE64_CHARS = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-"
)


def _base64(data: bytes) -> Iterator[tuple[str, int]]:
    """Keys in base64 text: decode a window around each needle, in every alignment."""
    lines = _Lines(data)
    for needle in BASE64_NEEDLES:
        for offset in _occurrences(data, needle):
            start = offset
            while start > 0 and offset - start < 8 and data[start - 1] in _BASE64_CHARS:
                start -= 1
            window = data[start : _BASE64_AFTER.match(data, offset).end()]
            line = lines.at(offset)
            for decoded in _decode_base64_run(window):
                for secret, _ in _plain(decoded, glued=True):
                    yield secret, line


def _decode_base64_run(text: bytes) -> Iterator[bytes]:
    """Decode a run of base64 (standard or URL-safe), whatever its alignment."""
    stripped = text.rstrip(b"=").replace(b"-", b"+").replace(b"_", b"/")
    for skip in range(4):
        body = stripped[skip:]
        if len(body) % 4 == 1:
            body = body[:-1]  # one lone character carries no whole byte
        # Pad rather than cut: cutting the last partial group would shorten a key
        # that ends there, and a shortened key is still key-shaped.
        body += b"=" * (-len(body) % 4)
        try:
            yield base64.b64decode(body)
        except (binascii.Error, ValueError):
            continue


def _unescape(line: bytes) -> bytes:
    """Undo ``\\uXXXX``, ``\\xXX`` and ``\\/`` escapes, also when escaped twice.

    A notebook stores Python source inside JSON, so an escape written in the source
    reaches the file with its backslash escaped once more.
    """

    def replace(m: re.Match[bytes]) -> bytes:
        hex_digits = m.group(1) or m.group(2)
        return bytes([int(hex_digits, 16)]) if hex_digits else b"/"

    return _ESCAPE.sub(replace, line.replace(b"\\\\", b"\\"))


def _lines_with(data: bytes, needles: tuple[bytes, ...]) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for each line holding a needle, each line once, in order."""
    starts: set[int] = set()
    for needle in needles:
        for offset in _occurrences(data, needle):
            starts.add(data.rfind(b"\n", 0, offset) + 1)
    lines = _Lines(data)
    for start in sorted(starts):
        end = data.find(b"\n", start)
        yield lines.at(start), data[start : end if end >= 0 else len(data)]


def _url(data: bytes) -> Iterator[tuple[str, int]]:
    """Percent-encoded keys, decoded one line at a time."""
    for number, line in _lines_with(data, (URL_NEEDLE,)):
        decoded = urllib.parse.unquote_to_bytes(line)
        for secret, _ in _plain(decoded, number, glued=True):
            yield secret, number


def _escaped(data: bytes) -> Iterator[tuple[str, int]]:
    """Keys written with string escapes, decoded one line at a time."""
    for number, line in _lines_with(data, ESCAPE_NEEDLES):
        decoded = _unescape(line)
        if decoded != line:
            for secret, _ in _plain(decoded, number, glued=True):
                yield secret, number


_DECODERS: tuple[tuple[str, str, Callable[[bytes], Iterator[tuple[str, int]]]], ...] = (
    (PLAIN, "plain", _plain),
    (UTF16, "utf-16", _utf16),
    (BASE64, "base64", _base64),
    (URL, "url", _url),
    (ESCAPE, "json-escape", _escaped),
)


def _scan_layers(
    data: bytes, layers: frozenset[str], placeholders: bool
) -> list[tuple[str, int, str]]:
    """Every text layer of one uncompressed buffer, deduplicated by (secret, line)."""
    found: dict[tuple[str, int], str] = {}
    for layer, encoding, decode in _DECODERS:
        if layer in layers:
            for secret, line in decode(data):
                found.setdefault((secret, line), encoding)
    if placeholders and PLAIN in layers:
        for text, line in _placeholders(data):
            found.setdefault((text, line), "plain")
    return [(secret, line, enc) for (secret, line), enc in found.items()]


def _inflate_gzip(data: bytes) -> tuple[bytes, bool]:
    """Inflate a gzip stream, stopping at MAX_INFLATED_BYTES; return (bytes, whole)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, MAX_INFLATED_BYTES)
    except zlib.error:
        return b"", True
    return out, not inflater.unconsumed_tail


def _zip_members(data: bytes) -> Iterator[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        return
    for info in archive.infolist()[:MAX_ZIP_MEMBERS]:
        if info.is_dir():
            continue
        try:
            with archive.open(info) as member:
                yield info.filename, member.read(MAX_INFLATED_BYTES)
        except (
            zipfile.BadZipFile,
            NotImplementedError,
            RuntimeError,
            OSError,
            zlib.error,
            EOFError,
        ):
            continue


# Zip record signatures: in a stored (uncompressed) member, a key at the very end
# of the file data is followed directly by "PK\x01\x02" or "PK\x03\x04", and the
# "PK" would be read as two more characters of the key.
_ZIP_RECORDS = re.compile(rb"PK(?=[\x01\x03\x05\x06\x07][\x02\x04\x06\x07\x08])")


def _unglue_zip_records(data: bytes) -> bytes:
    """The zip's raw bytes with each record signature's "PK" blanked (same length,
    so lines and offsets stay put); the members are scanned on their own."""
    return _ZIP_RECORDS.sub(b"\0\0", data)


def scan_bytes(
    data: bytes, *, placeholders: bool = False, layers: frozenset[str] | None = None
) -> list[KeyMatch]:
    """Return every credential in one object's bytes, in every supported encoding.

    Args:
        data: the object's raw content.
        placeholders: also return placeholder-shaped text such as ``sk_live_...``
            (marked ``ignored``), for ``--show-ignored``.
        layers: the decoders a prefilter already found needles for; computed here
            when not given.
    """
    results: list[KeyMatch] = []
    raw = _unglue_zip_records(data) if data[:4] == ZIP_MAGIC else data
    containers: list[tuple[str, str | None, bytes]] = [("", None, raw)]
    if data[:2] == GZIP_MAGIC:
        inflated, _ = _inflate_gzip(data)
        if inflated:
            containers.append(("gzip+", None, inflated))
    elif data[:4] == ZIP_MAGIC:
        containers.extend(("zip+", name, body) for name, body in _zip_members(data))

    for wrapper, member, buffer in containers:
        wanted = (
            layers if layers is not None and buffer is raw else needed_layers(buffer)
        )
        for secret, line, encoding in _scan_layers(buffer, wanted, placeholders):
            if KEY_PATTERN.fullmatch(secret.encode()) is None:
                reason: str | None = "placeholder text"
            else:
                reason = placeholder_reason(secret)
            results.append(
                KeyMatch(
                    secret=secret,
                    line=line,
                    encoding=wrapper + encoding if wrapper else encoding,
                    member=member,
                    ignored=reason,
                )
            )
    return results
