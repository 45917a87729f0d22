"""A key at the end of a stored zip member is not glued to the next record's "PK"."""

from __future__ import annotations

import io
import zipfile

from incident.detect.content import scan_bytes
from tests.helpers.gitrepo import fake_key


def test_stored_member_ending_in_a_key_gives_the_key_only() -> None:
    key = fake_key(seed="zip-glue")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("a.env", "KEY=" + key)  # no newline: "PK" follows the key
        archive.writestr("b.txt", "x")

    found = {m.secret for m in scan_bytes(buffer.getvalue())}

    assert found == {key}
