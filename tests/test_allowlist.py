"""The committed allowlist: where it is read from, and every malformed shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from incident.allowlist import (
    ALLOWLIST_FILE,
    AllowlistEntry,
    add_allowlist_entry,
    load_allowlist,
)
from incident.errors import UsageError
from incident.redact import fingerprint
from tests.helpers.gitrepo import GitRepo, fake_key

FP_A = fingerprint(fake_key(seed="a"))
FP_B = fingerprint(fake_key(seed="b"))


def test_allowlist_missing_file_allows_nothing(repo: GitRepo) -> None:
    """Without the file, nothing is allowed."""
    allowlist = load_allowlist(repo.path)

    assert len(allowlist) == 0
    assert allowlist.reason_for(FP_A) is None


def test_allowlist_reads_work_tree_entries(repo: GitRepo) -> None:
    """Entries are read from the work tree; fingerprints match case-insensitively."""
    (repo.path / ALLOWLIST_FILE).write_text(
        f"# fixtures\nallow:\n  - fingerprint: {FP_A.upper()}\n"
        "    reason: refund fixture\n    added_by: Dana\n"
    )

    allowlist = load_allowlist(repo.path / ".git")

    assert allowlist.reason_for(FP_A) == "refund fixture"
    assert FP_A in allowlist and FP_B not in allowlist
    assert allowlist.entries[0].added_by == "Dana"


def test_allowlist_bare_repository_and_rev_read_committed_file(repo: GitRepo,
                                                                tmp_path: Path) -> None:
    """A bare clone reads HEAD's file; rev= ignores uncommitted edits."""
    repo.commit({ALLOWLIST_FILE: f"- fingerprint: {FP_A}\n  reason: committed\n"})
    (repo.path / ALLOWLIST_FILE).write_text(f"- fingerprint: {FP_B}\n  reason: draft\n")
    bare = tmp_path / "bare.git"
    repo.git("clone", "-q", "--bare", str(repo.path), str(bare))

    assert load_allowlist(bare).reason_for(FP_A) == "committed"
    assert load_allowlist(repo.path, rev="HEAD").reason_for(FP_B) is None
    assert load_allowlist(repo.path).reason_for(FP_B) == "draft"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("allow:\n  - fingerprint: [oops\n", 3, "not valid YAML"),
        (f"allow:\n  - fingerprint: {FP_A}\n    reason: a\n  - fingerprint: abc\n"
         "    reason: x\n", 4, "64 hex digits"),
        (f"allow:\n  - fingerprint: {FP_A}\n    reson: typo\n", 3, "unknown field"),
        (f"allow:\n  - fingerprint: {FP_A}\n", 2, "no reason"),
        ("other: 1\n", 1, "`allow:`"),
    ],
)
def test_allowlist_malformed_names_the_line(repo: GitRepo, text: str, line: int,
                                            words: str) -> None:
    """Each mistake is a UsageError naming the file and line."""
    (repo.path / ALLOWLIST_FILE).write_text(text)

    with pytest.raises(UsageError) as caught:
        load_allowlist(repo.path)

    assert f"line {line}" in caught.value.message
    assert words in caught.value.message


def test_allowlist_refuses_a_key_without_echoing_it(repo: GitRepo) -> None:
    """A key pasted into the file is refused, and the message does not repeat it."""
    key = fake_key(seed="pasted")
    (repo.path / ALLOWLIST_FILE).write_text(f"- fingerprint: {key}\n  reason: x\n")

    with pytest.raises(UsageError) as caught:
        load_allowlist(repo.path)

    assert "line 1" in caught.value.message
    assert key not in str(caught.value) + (caught.value.hint or "")


def test_add_entry_keeps_comments_and_is_idempotent(repo: GitRepo) -> None:
    """Adding appends to the existing list, keeps comments, and never duplicates."""
    path = repo.path / ALLOWLIST_FILE
    path.write_text(f"# keep me\nallow:\n  - fingerprint: {FP_A}\n    reason: a\n")

    add_allowlist_entry(repo.path, AllowlistEntry(FP_B, "b", "Dana", "2026-12-03"))
    add_allowlist_entry(repo.path, AllowlistEntry(FP_B, "b again"))

    text = path.read_text()
    assert text.startswith("# keep me\n")
    assert text.count(FP_B) == 1
    assert load_allowlist(repo.path).reason_for(FP_B) == "b"


def test_add_entry_refuses_a_key_as_fingerprint(repo: GitRepo) -> None:
    """Passing the key itself instead of its fingerprint writes nothing."""
    key = fake_key(seed="wrong-arg")

    with pytest.raises(UsageError) as caught:
        add_allowlist_entry(repo.path, AllowlistEntry(key, "oops"))

    assert key not in caught.value.message
    assert not (repo.path / ALLOWLIST_FILE).exists()
