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
import io
import re
import urllib.parse
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from incident.detect.placeholders import placeholder_reason
from incident.detect.rules import (
    KEY_PATTERN,
    PLACEHOLDER_PATTERN,
    KeyKind,
    Mode,
    classify,
)

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
_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{24,}={0,2}")
_ESCAPE = re.compile(rb"\\u00([0-9A-Fa-f]{2})|\\x([0-9A-Fa-f]{2})|\\/")

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class KeyMatch:
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

    @property
    def kind(self) -> KeyKind:
        return classify(self.secret)[0]

    @property
    def mode(self) -> Mode:
        return classify(self.secret)[1]


def has_needle(data: bytes) -> bool:
    """Cheap prefilter: could this object hold a key in any encoding we decode?

    Ordered by how often each test settles the question on ordinary source code;
    UTF-16 text always holds NUL bytes, so one memchr gates its needles.
    """
    return (
        any(n in data for n in PLAIN_NEEDLES)
        or any(n in data for n in BASE64_NEEDLES)
        or URL_NEEDLE in data
        or any(n in data for n in ESCAPE_NEEDLES)
        or (b"\0" in data and any(n in data for n in UTF16_NEEDLES))
        or data[:2] == GZIP_MAGIC
        or data[:4] == ZIP_MAGIC
    )


def _line_at(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _plain(data: bytes, line_base: int | None = None) -> Iterator[tuple[str, int]]:
    """Yield (secret, line) for every key-shaped match in data."""
    for m in KEY_PATTERN.finditer(data):
        line = line_base if line_base is not None else _line_at(data, m.start())
        yield m.group().decode("ascii"), line


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
            yield from _plain(encoded)


def _base64(data: bytes) -> Iterator[tuple[str, int]]:
    for run in _BASE64_RUN.finditer(data):
        text = run.group()
        if not any(n in text for n in BASE64_NEEDLES):
            continue
        line = _line_at(data, run.start())
        for decoded in _decode_base64_run(text):
            for secret, _ in _plain(decoded):
                yield secret, line


def _decode_base64_run(text: bytes) -> Iterator[bytes]:
    """Decode a run of base64 (standard or URL-safe), whatever its alignment."""
    stripped = text.rstrip(b"=")
    for skip in range(4):
        body = stripped[skip:]
        body = body + b"=" * (-len(body) % 4)
        try:
            yield base64.b64decode(body.replace(b"-", b"+").replace(b"_", b"/"))
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


def _line_decoded(data: bytes) -> Iterator[tuple[str, int, str]]:
    """Percent-encoded and escaped keys, decoded one line at a time."""
    want_url = URL_NEEDLE in data
    want_escape = any(n in data for n in ESCAPE_NEEDLES)
    for number, line in enumerate(data.split(b"\n"), start=1):
        if want_url and URL_NEEDLE in line:
            decoded = urllib.parse.unquote_to_bytes(line)
            for secret, _ in _plain(decoded, number):
                yield secret, number, "url"
        if want_escape and b"\\" in line:
            decoded = _unescape(line)
            if decoded != line:
                for secret, _ in _plain(decoded, number):
                    yield secret, number, "json-escape"


def _scan_layers(data: bytes, *, placeholders: bool) -> list[tuple[str, int, str]]:
    """Every text layer of one uncompressed buffer, deduplicated by (secret, line)."""
    found: dict[tuple[str, int], str] = {}

    def add(secret: str, line: int, encoding: str) -> None:
        found.setdefault((secret, line), encoding)

    if any(n in data for n in PLAIN_NEEDLES):
        for secret, line in _plain(data):
            add(secret, line, "plain")
        if placeholders:
            for text, line in _placeholders(data):
                add(text, line, "plain")
    if b"\0" in data and any(n in data for n in UTF16_NEEDLES):
        for secret, line in _utf16(data):
            add(secret, line, "utf-16")
    if any(n in data for n in BASE64_NEEDLES):
        for secret, line in _base64(data):
            add(secret, line, "base64")
    if URL_NEEDLE in data or any(n in data for n in ESCAPE_NEEDLES):
        for secret, line, encoding in _line_decoded(data):
            add(secret, line, encoding)
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


def scan_bytes(data: bytes, *, placeholders: bool = False) -> list[KeyMatch]:
    """Return every credential in one object's bytes, in every supported encoding.

    Args:
        data: the object's raw content.
        placeholders: also return placeholder-shaped text such as ``sk_live_...``
            (marked ``ignored``), for ``--show-ignored``.
    """
    results: list[KeyMatch] = []
    containers: list[tuple[str, str | None, bytes]] = [("", None, data)]
    if data[:2] == GZIP_MAGIC:
        inflated, _ = _inflate_gzip(data)
        if inflated:
            containers.append(("gzip+", None, inflated))
    elif data[:4] == ZIP_MAGIC:
        containers.extend(("zip+", name, body) for name, body in _zip_members(data))

    for wrapper, member, buffer in containers:
        for secret, line, encoding in _scan_layers(buffer, placeholders=placeholders):
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
