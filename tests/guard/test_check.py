"""`incident guard check`: staged changes and pushed ranges, in real repositories."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from incident.guard import check_push, check_staged, parse_push_input
from incident.guard.gitio import ZERO_SHA
from incident.redact import fingerprint, redact
from tests.guard.cli_helpers import assert_no_secret, invoke
from tests.helpers.gitrepo import GitRepo, fake_key


def test_check_blocks_staged_key_with_file_line_and_fix(work: GitRepo) -> None:
    """A staged key blocks with its file, line, redacted form, fingerprint and fix."""
    key = fake_key(seed="staged")
    work.write({"app/settings.py": f"DEBUG = True\nSTRIPE = '{key}'\n"})

    result = invoke(["guard", "check", str(work.path)], expected=1)

    assert "app/settings.py:2" in result.stdout
    assert redact(key) in result.stdout
    assert fingerprint(key) in result.stdout
    assert "git restore --staged app/settings.py" in result.stdout
    assert "incident guard allow" in result.stdout
    assert_no_secret(result, key)


def test_check_passes_clean_staged_changes(work: GitRepo) -> None:
    """Staged changes without a key pass with exit 0."""
    work.write({"app.py": "import os\nKEY = os.environ['STRIPE_API_KEY']\n"})

    result = invoke(["guard", "check", str(work.path)], expected=0)

    assert "no Stripe secret added" in result.stderr


def test_check_ignores_unstaged_work_tree_changes(work: GitRepo) -> None:
    """Only the index counts: a key in an unstaged edit does not block the commit."""
    work.write({"notes.txt": "clean\n"})
    (work.path / "notes.txt").write_text(f"{fake_key(seed='unstaged')}\n")

    invoke(["guard", "check", str(work.path)], expected=0)


@pytest.mark.parametrize(
    "content",
    [
        "key = 'sk_live_" + "x" * 30 + "'\n",  # placeholder
        "STRIPE_KEY=sk_" + "live_...\n",  # documentation ellipsis
        f"pk = '{fake_key('pk_' + 'live_', seed='pub')}'\n",  # publishable: not secret
    ],
)
def test_check_does_not_block_placeholders_or_publishable(work: GitRepo,
                                                          content: str) -> None:
    """Placeholders and publishable keys never block a commit."""
    work.write({"docs.md": content})

    invoke(["guard", "check", str(work.path)], expected=0)


def test_check_blocks_test_mode_and_base64_keys(work: GitRepo) -> None:
    """Test-mode keys are secrets; a base64 Kubernetes Secret is decoded."""
    key = fake_key("sk_" + "test_", seed="b64")
    encoded = base64.b64encode(key.encode()).decode()
    work.write({"k8s/secret.yaml": "apiVersion: v1\nkind: Secret\ndata:\n"
                f"  STRIPE_API_KEY: {encoded}\n"})

    result = check_staged(work.path)

    assert result.blocked
    assert [(f.path, f.line, f.encoding) for f in result.blocking] == [
        ("k8s/secret.yaml", 4, "base64")
    ]


def test_check_key_already_committed_warns_but_does_not_block(work: GitRepo) -> None:
    """Editing another line of a file that already held a key does not block."""
    key = fake_key(seed="old")
    work.commit({"config.py": f"KEY = '{key}'\n"}, "old leak")
    work.write({"config.py": f"KEY = '{key}'\nDEBUG = False\n"})

    result = invoke(["guard", "check", str(work.path)], expected=0)

    assert "already committed" in result.stderr
    assert redact(key) in result.stderr
    assert_no_secret(result, key)


def test_check_honours_allowlist(work: GitRepo) -> None:
    """A key whose fingerprint is allowlisted does not block, and says why."""
    key = fake_key("sk_" + "test_", seed="fixture")
    (work.path / ".incident-allowlist.yaml").write_text(
        f"allow:\n  - fingerprint: {fingerprint(key)}\n    reason: charge fixture\n"
    )
    work.write({"tests/fixture.json": json.dumps({"key": key})})

    result = invoke(["guard", "check", str(work.path)], expected=0)

    assert "charge fixture" in result.stderr
    assert_no_secret(result, key)


def test_check_json_format_has_no_secret(work: GitRepo) -> None:
    """--format json lists findings by fingerprint and redacted form only."""
    key = fake_key(seed="json")
    work.write({"a.env.js": f"const k = '{key}';\n"})

    result = invoke(["guard", "check", str(work.path), "--format", "json"], expected=1)

    data = json.loads(result.stdout)
    assert data["blocked"] is True
    assert data["findings"][0]["fingerprint"] == fingerprint(key)
    assert_no_secret(result, key)


def test_check_first_commit_and_bare_repository(tmp_path: Path) -> None:
    """Before the first commit the whole index is checked; a bare repo is refused."""
    repo = GitRepo.init(tmp_path / "fresh")
    repo.write({"k.txt": fake_key(seed="first") + "\n"})
    bare = GitRepo.init(tmp_path / "bare.git", bare=True)

    assert check_staged(repo.path).blocked
    result = invoke(["guard", "check", str(bare.path)], expected=2)
    assert "is a bare repository" in result.stderr


def _remote_with_main(work: GitRepo, tmp_path: Path) -> GitRepo:
    remote = GitRepo.init(tmp_path / "remote.git", bare=True)
    work.git("remote", "add", "origin", str(remote.path))
    work.git("push", "-q", "origin", "main")
    return remote


def test_push_checks_only_commits_the_remote_lacks(work: GitRepo,
                                                   tmp_path: Path) -> None:
    """Commits already on the remote are not scanned again; new ones are."""
    old_key = fake_key(seed="published")
    work.commit({"old.py": f"K = '{old_key}'\n"}, "already public")
    _remote_with_main(work, tmp_path)
    remote_tip = work.head()
    new_key = fake_key(seed="new")
    work.commit({"clean.txt": "fine\n"}, "clean")
    clean_tip = work.head()
    work.commit({"new.py": f"K = '{new_key}'\n"}, "leak")
    leak_tip = work.head()

    clean = check_push(work.path, parse_push_input(
        [f"refs/heads/main {clean_tip} refs/heads/main {remote_tip}"]))
    leak = check_push(work.path, parse_push_input(
        [f"refs/heads/main {leak_tip} refs/heads/main {remote_tip}"]))

    assert not clean.blocked and clean.findings == []
    assert [(f.path, f.commit) for f in leak.blocking] == [("new.py", leak_tip)]


def test_push_new_branch_scans_commits_on_no_remote_ref(work: GitRepo,
                                                        tmp_path: Path) -> None:
    """A new branch is checked for every commit not on a remote-tracking ref."""
    _remote_with_main(work, tmp_path)
    work.git("fetch", "-q", "origin")
    work.git("checkout", "-q", "-b", "feature")
    key = fake_key(seed="feature")
    work.commit({"feature.py": f"K = '{key}'\n"}, "feature leak")
    work.commit({"feature.py": "import os\n"}, "removed again")

    stdin = f"refs/heads/feature {work.head()} refs/heads/feature {ZERO_SHA}\n"
    result = invoke(["guard", "check", str(work.path), "--pre-push",
                     "--remote", "origin"], expected=1, stdin=stdin)

    assert "feature.py:1" in result.stdout
    assert "git rebase -i" in result.stdout
    assert_no_secret(result, key)


def test_push_blocks_key_in_commit_message_and_allows_deletions(
        work: GitRepo, tmp_path: Path) -> None:
    """A key pasted into a commit message blocks; deleting a branch sends nothing."""
    remote_tip = _remote_with_main(work, tmp_path) and work.head()
    key = fake_key(seed="message")
    work.commit({"x.txt": "x\n"}, f"debug with {key}")

    message = check_push(work.path, parse_push_input(
        [f"refs/heads/main {work.head()} refs/heads/main {remote_tip}"]))
    deletion = check_push(work.path, parse_push_input(
        [f"(delete) {ZERO_SHA} refs/heads/old {remote_tip}"]))

    assert [f.path for f in message.blocking] == [None]
    assert message.blocking[0].where.startswith("message of ")
    assert not deletion.blocked


def test_push_range_from_pre_commit_framework_env(work: GitRepo, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch
                                                  ) -> None:
    """PRE_COMMIT_FROM_REF / PRE_COMMIT_TO_REF select the range to check."""
    start = work.head()
    key = fake_key(seed="framework")
    work.commit({"f.py": f"K = '{key}'\n"}, "leak")
    monkeypatch.setenv("PRE_COMMIT_FROM_REF", start)
    monkeypatch.setenv("PRE_COMMIT_TO_REF", work.head())

    result = invoke(["guard", "check", str(work.path)], expected=1)

    assert "f.py:1" in result.stdout
    assert_no_secret(result, key)


def test_push_malformed_input_is_a_usage_error(work: GitRepo) -> None:
    """Garbage on the pre-push stdin is reported, not ignored."""
    result = invoke(["guard", "check", str(work.path), "--pre-push"], expected=2,
                    stdin="not a push line\n")

    assert "Unexpected pre-push input line" in result.stderr


def test_push_unknown_remote_tip_falls_back_to_remote_refs(work: GitRepo,
                                                           tmp_path: Path) -> None:
    """A remote tip we never fetched: everything not on a remote ref is checked."""
    _remote_with_main(work, tmp_path)
    work.git("fetch", "-q", "origin")
    key = fake_key(seed="unfetched")
    work.commit({"u.py": f"K = '{key}'\n"}, "leak")
    unknown = "1234567890abcdef" * 2 + "12345678"

    result = check_push(work.path, parse_push_input(
        [f"refs/heads/main {work.head()} refs/heads/main {unknown}"]))

    assert [f.path for f in result.blocking] == ["u.py"]
    assert result.objects < 10  # the published first commit was not read again


def test_check_renamed_file_with_old_key_does_not_block(work: GitRepo) -> None:
    """`git mv` of a file that already held a key is not a new leak."""
    key = fake_key(seed="moved")
    work.commit({"old/name.py": f"K = '{key}'\n" + "x = 1\n" * 20}, "old leak")
    work.git("mv", "old/name.py", "new_name.py")

    result = check_staged(work.path)

    assert not result.blocked
    assert [(f.path, f.existing) for f in result.findings] == [("new_name.py", True)]
