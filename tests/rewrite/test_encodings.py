"""SecretReplacer: every encoded form of a key is replaced, nothing else changes."""

from __future__ import annotations

import base64
import gzip
import io
import json
import urllib.parse
import zipfile
from collections.abc import Callable

import pytest

from incident.detect import scan_bytes
from incident.rewrite.encodings import (
    BlobAction,
    SecretReplacer,
    encoded_needles,
    is_binary,
)
from tests.helpers.gitrepo import fake_key

KEY = fake_key(seed="enc")
WEBHOOK = "whsec_" + "Ab/+" + fake_key(seed="wh")[8:40]
MARKER = "***STRIPE-KEY-REMOVED***"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _json_escaped(text: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in text)


CASES: list[tuple[str, Callable[[str], bytes]]] = [
    ("plain", lambda k: f"STRIPE_KEY={k}\n".encode()),
    ("utf-16-le", lambda k: ("\ufeffkey=" + k).encode("utf-16-le")),
    ("utf-16-be", lambda k: ("\ufeffkey=" + k).encode("utf-16-be")),
    ("k8s secret", lambda k: f"data:\n  stripe: {_b64(k)}\n".encode()),
    ("base64 env file", lambda k: _b64(f"A=1\nSTRIPE={k}\nB=2\n").encode()),
    (
        "base64 url-safe unpadded",
        lambda k: base64.urlsafe_b64encode(f"x{k}".encode()).rstrip(b"="),
    ),
    (
        "url fully encoded",
        lambda k: ("u=" + "".join(f"%{ord(c):02X}" for c in k)).encode(),
    ),
    (
        "url underscores",
        lambda k: ("u=" + urllib.parse.quote(k).replace("_", "%5F")).encode(),
    ),
    ("json escaped", lambda k: json.dumps({"k": _json_escaped(k)}).encode()),
]


@pytest.mark.parametrize(("name", "build"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("secret", [KEY, WEBHOOK], ids=["sk", "whsec"])
def test_replacer_removes_every_form(
    name: str, build: Callable[[str], bytes], secret: str
) -> None:
    """Each encoded form is rewritten so that neither scanner nor needles find it."""
    data = build(secret)
    assert any(m.secret == secret for m in scan_bytes(data)), "scanner sees it"

    outcome = SecretReplacer([secret], MARKER).replace(data)

    assert outcome.action is BlobAction.REWRITTEN
    assert not any(m.secret == secret for m in scan_bytes(outcome.data))
    for needles in encoded_needles(secret).values():
        assert not any(n in outcome.data for n in needles)


def test_replacer_k8s_secret_stays_valid_base64() -> None:
    """A Kubernetes Secret value decodes to the marker after the rewrite."""
    data = f"data:\n  stripe: {_b64(KEY)}\n  other: {_b64('keep-me')}\n".encode()

    outcome = SecretReplacer([KEY], MARKER).replace(data)

    lines = outcome.data.decode().splitlines()
    assert base64.b64decode(lines[1].split(": ")[1]) == MARKER.encode()
    assert lines[2] == f"  other: {_b64('keep-me')}"


def test_replacer_utf16_marker_in_same_byte_order() -> None:
    """The marker is written in the file's own UTF-16 byte order."""
    for codec in ("utf-16-le", "utf-16-be"):
        data = ("\ufeffkey=" + KEY + "\n").encode(codec)

        outcome = SecretReplacer([KEY], MARKER).replace(data)

        assert outcome.data.decode(codec) == "\ufeffkey=" + MARKER + "\n"


def test_replacer_gzip_is_recompressed() -> None:
    """A gzip stream is inflated, rewritten and compressed again, mtime kept."""
    data = gzip.compress(f"key={KEY}\n".encode(), mtime=1234)

    outcome = SecretReplacer([KEY], MARKER).replace(data)

    assert outcome.action is BlobAction.RECOMPRESSED
    assert gzip.decompress(outcome.data) == f"key={MARKER}\n".encode()
    assert outcome.data[4:8] == data[4:8]


def test_replacer_zip_and_binary_are_removed() -> None:
    """Zip archives and binaries that hold a key cannot be edited: REMOVE."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.env", f"K={KEY}")
    binary = b"\x7fELF\x00\x00" + KEY.encode() + b"\x00"
    replacer = SecretReplacer([KEY], MARKER)

    assert replacer.replace(buffer.getvalue()).action is BlobAction.REMOVE
    assert replacer.replace(binary).action is BlobAction.REMOVE
    assert is_binary(binary)
    assert not is_binary(("x=" + KEY).encode("utf-16-le"))


def test_replacer_leaves_other_content_alone() -> None:
    """Other keys, near misses and clean text come out byte for byte."""
    other = fake_key(seed="other")
    data = f"a={other}\nb={KEY[:-1]}\nc=%41\\n\n".encode()

    outcome = SecretReplacer([KEY], MARKER).replace(data)

    assert outcome.action is BlobAction.UNCHANGED
    assert outcome.data == data


def test_replacer_longer_key_replaced_whole() -> None:
    """When one key contains another, the longer is replaced first, leaving no tail."""
    short = KEY[:60]
    data = f"{KEY} {short}\n".encode()

    outcome = SecretReplacer([short, KEY], MARKER).replace(data)

    assert outcome.data == f"{MARKER} {MARKER}\n".encode()
