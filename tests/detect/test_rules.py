"""Key patterns, placeholders and decoders: true and false samples."""

from __future__ import annotations

import base64
import gzip
import io
import json
import urllib.parse
import zipfile

import pytest

from incident.detect.content import scan_bytes
from incident.detect.placeholders import placeholder_reason
from incident.detect.rules import KeyKind, Mode, classify
from tests.helpers.gitrepo import fake_key

LIVE = fake_key(seed="rules-live")
MODERN = fake_key(seed="modern", length=99)  # 107 characters in all
LEGACY = fake_key(seed="legacy", length=24)


def secrets_in(data: bytes) -> list[str]:
    return [m.secret for m in scan_bytes(data) if m.ignored is None]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key = '{MODERN}'", MODERN),
        (f"{LEGACY}", LEGACY),
        (f"https://x.test/?key={MODERN}&next=1", MODERN),
        (f"charge({MODERN})", MODERN),
        (f"[{MODERN},other]", MODERN),
        (f"KEY={MODERN}\n", MODERN),
        (f'"{MODERN}"', MODERN),
    ],
)
def test_pattern_takes_the_whole_key_whatever_follows(text: str, expected: str) -> None:
    """A modern 107-character key is captured whole, whatever character follows it."""
    assert secrets_in(text.encode()) == [expected]


@pytest.mark.parametrize(
    ("prefix", "kind", "mode"),
    [
        ("sk_" + "live_", KeyKind.SECRET_KEY, Mode.LIVE),
        ("sk_" + "test_", KeyKind.SECRET_KEY, Mode.TEST),
        ("rk_" + "live_", KeyKind.RESTRICTED_KEY, Mode.LIVE),
        ("rk_" + "test_", KeyKind.RESTRICTED_KEY, Mode.TEST),
        ("pk_" + "live_", KeyKind.PUBLISHABLE_KEY, Mode.LIVE),
        ("pk_" + "test_", KeyKind.PUBLISHABLE_KEY, Mode.TEST),
    ],
)
def test_classify_every_prefix(prefix: str, kind: KeyKind, mode: Mode) -> None:
    """Secret, restricted and publishable keys in both modes are told apart."""
    key = fake_key(prefix, seed=prefix)

    assert secrets_in(key.encode()) == [key]
    assert classify(key) == (kind, mode)


def test_webhook_secret_detected() -> None:
    """whsec_ signing secrets, Dashboard (32) and CLI (64 hex) forms, are found."""
    dashboard = "whsec_" + fake_key(seed="wh")[8:40]
    cli = "whsec_" + "".join(f"{b:02x}" for b in bytes(range(7, 39)))

    assert secrets_in(f"a={dashboard}\nb={cli}".encode()) == [dashboard, cli]
    assert classify(dashboard) == (KeyKind.WEBHOOK_SECRET, Mode.UNKNOWN)


@pytest.mark.parametrize(
    "text",
    [
        "sk_" + "live_...",
        "sk_" + "test_" + "X" * 24,
        "sk_" + "test_" + "x" * 30,
        "sk_" + "live_<your key>",
        "sk_" + "live_" + "YOUR_SECRET_KEY_HERE",
        "sk_" + "test_" + "1234567890abcdefghijklmn",
        "sk_" + "test_" + "abc123" * 5,
        "sk_" + "live_" + "0" * 24,
        "sk_" + "test_" + "4eC39HqLyjWDarjtT1zdp7dc",  # Stripe's API reference
        "pk_" + "test_" + "TYooMQauvdEDq54NiTphI7jx",
        "task_test_" + "a" * 10,
        "sk_" + "live_" + "short",
    ],
)
def test_placeholders_and_examples_are_not_secrets(text: str) -> None:
    """Placeholders, repeated or sequential bodies and Stripe's examples are ignored."""
    assert secrets_in(text.encode()) == []


def test_placeholder_reason_names_the_rule() -> None:
    """--show-ignored can say why each one was dismissed."""
    assert placeholder_reason("sk_" + "test_" + "4eC39HqLyjWDarjtT1zdp7dc") == (
        "example key from Stripe's documentation"
    )
    assert placeholder_reason("sk_" + "live_" + "0" * 24) == "repeated characters"
    assert placeholder_reason(LIVE) is None


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_text(codec: str) -> None:
    """UTF-16 files, with or without BOM, either byte order."""
    data = f"first\nKEY={LIVE}\n".encode(codec)

    [match] = scan_bytes(data)

    assert (match.secret, match.line, match.encoding) == (LIVE, 2, "utf-16")


@pytest.mark.parametrize("lead", ["", "K=", "KY="])
def test_base64_any_alignment(lead: str) -> None:
    """A Kubernetes Secret's base64 value, whatever the key's offset inside it."""
    value = base64.b64encode(f"{lead}{LIVE}\n".encode()).decode()
    data = f"kind: Secret\ndata:\n  STRIPE_KEY: {value}\n".encode()

    [match] = scan_bytes(data)

    assert (match.secret, match.line, match.encoding) == (LIVE, 3, "base64")


def test_url_encoded() -> None:
    """Percent-encoded keys, fully or only the underscores."""
    full = "".join(f"%{b:02X}" for b in LIVE.encode())
    partial = urllib.parse.quote(LIVE, safe="").replace("_", "%5F")
    data = f"a\nbody=key%3D{full}\nother={partial}\n".encode()

    matches = scan_bytes(data)

    assert {(m.secret, m.line, m.encoding) for m in matches} == {
        (LIVE, 2, "url"),
        (LIVE, 3, "url"),
    }


def test_json_escapes_in_a_notebook() -> None:
    """A notebook cell whose source escapes the key's characters."""
    escaped = "".join(f"\\u{ord(c):04x}" for c in LIVE)
    in_json = '{"cells": [{"source": ["k = \'' + escaped + "'\\n\"]}]}"
    in_python = json.dumps({"cells": [{"source": [f"k = '{escaped}'\n"]}]})

    for data in (in_json, in_python):
        [match] = scan_bytes(data.encode())
        assert (match.secret, match.encoding) == (LIVE, "json-escape")


def test_gzip_and_zip_members() -> None:
    """One level into gzip streams and zip members, with the member named."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("docs/readme.txt", "nothing")
        archive.writestr("conf/.env", f"A=1\nSTRIPE={LIVE}\n")

    [zipped] = scan_bytes(buffer.getvalue())
    [gzipped] = scan_bytes(gzip.compress(f"x\ny\n{LIVE}".encode()))

    assert (zipped.secret, zipped.member, zipped.line) == (LIVE, "conf/.env", 2)
    assert zipped.encoding == "zip+plain"
    assert (gzipped.line, gzipped.encoding) == (3, "gzip+plain")


def test_long_lines_and_binary_files() -> None:
    """A key in the middle of a megabyte-long line or of binary data is found."""
    long_line = b"a" * 1_000_000 + b" " + LIVE.encode() + b" " + b"b" * 1_000_000
    binary = bytes(range(256)) * 100 + b"\0" + LIVE.encode() + b"\0" + bytes(300)

    assert secrets_in(long_line) == [LIVE]
    assert secrets_in(binary) == [LIVE]


def test_key_glued_to_a_word_is_not_a_key() -> None:
    """``disk_test_…`` is an identifier, not a key (gitleaks' false positive)."""
    body = fake_key(seed="glued")[8:]

    assert secrets_in(f"disk_test_{body}".encode()) == []
    assert secrets_in(f"mask_live_{body}".encode()) == []


@pytest.mark.parametrize(
    "before",
    ["\\n", "\\t", "%3D", "\\u003d", "\\x3d", "(", "'", " ", "="],
)
def test_key_after_an_escape_or_encoding_is_a_key(before: str) -> None:
    """A letter that ends an escape sequence is a boundary: ``"a\\nsk_live_…"``."""
    assert secrets_in(f'"a{before}{LIVE}"'.encode()) == [LIVE]
