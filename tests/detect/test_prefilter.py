"""The prefilter: the fast and the portable implementation give the same answers."""

from __future__ import annotations

import base64
import gzip
import os
import random

import pytest

from incident.detect.content import is_container, scan_bytes
from incident.detect.prefilter import python_prefilter, select_prefilter
from tests.helpers.gitrepo import fake_key

KEY = fake_key(seed="prefilter")


def samples() -> list[bytes]:
    rng = random.Random(3)
    plain = [
        b"",
        b"print('hello')\n" * 50,
        KEY.encode(),
        f"x = '{KEY}'".encode(),
        base64.b64encode(b"xx" + KEY.encode()),
        KEY.encode("utf-16-le"),
        KEY.encode("utf-16-be"),
        ("k=" + KEY.replace("_", "%5F")).encode(),
        b"s = '\\u0073k_live_...'",
        gzip.compress(KEY.encode()),
        b"PK\x03\x04rest",
    ]
    noise = [bytes(rng.getrandbits(8) for _ in range(2000)) for _ in range(20)]
    return plain + noise + [os.urandom(100)]


@pytest.mark.parametrize("data", samples())
def test_prefilter_implementations_agree(data: bytes) -> None:
    """Hyperscan (when loadable) and the portable search pick the same decoders."""
    assert select_prefilter()(data) == python_prefilter(data)


@pytest.mark.parametrize("data", samples())
def test_prefilter_never_rejects_what_the_scanner_finds(data: bytes) -> None:
    """Anything scan_bytes would report passes the prefilter (no false negatives)."""
    if scan_bytes(data, placeholders=True) and not is_container(data):
        assert python_prefilter(data)
        assert select_prefilter()(data)


def test_layers_from_the_prefilter_find_the_same_keys() -> None:
    """Scanning with the layers a prefilter chose equals scanning with all of them."""
    for data in samples():
        chosen = scan_bytes(data, layers=select_prefilter()(data))
        assert [m.secret for m in chosen] == [m.secret for m in scan_bytes(data)]
