"""rewrite_history on real repositories: only the keys change, nothing else."""

from __future__ import annotations

import subprocess
from pathlib import Path

from incident.rewrite import rewrite_history
from incident.rewrite.gitcmd import annotated_tags, list_refs, mirror_clone
from incident.rewrite.history import ref_safe_marker
from tests.rewrite.conftest import MARKER, Story, assert_same_history, git_bytes


def _all_objects(path: Path) -> bytes:
    return git_bytes(path, "cat-file", "--batch-all-objects", "--batch")


def test_rewrite_history_mirror_keeps_everything_but_the_keys(
    story: Story, tmp_path: Path
) -> None:
    """A mirror of the story is rewritten commit by commit, keys replaced only."""
    mirror = mirror_clone(story.repo.path, tmp_path / "mirror.git")

    result = rewrite_history(mirror, story.secrets)

    removed = {b"dist/bundle.zip", b"bin/tool.bin"}
    assert_same_history(
        story.repo.path, mirror, result.commit_map, story.secrets, removed
    )
    objects = _all_objects(mirror)
    for secret in story.secrets:
        assert secret.encode() not in objects
        assert secret.encode("utf-16-le") not in objects
        assert secret.encode("utf-16-be") not in objects
    assert MARKER.encode() in objects
    assert {
        "plain",
        "utf-16-le",
        "utf-16-be",
        "base64",
        "url-or-escape",
        "gzip",
    } <= result.forms


def test_rewrite_history_counts_and_first_changed(story: Story, tmp_path: Path) -> None:
    """Every commit from the first leak on is rewritten; the first one is reported."""
    mirror = mirror_clone(story.repo.path, tmp_path / "mirror.git")
    leak = story.repo.git("rev-list", "--all", "--grep", "Add settings")

    result = rewrite_history(mirror, story.secrets)

    assert result.first_changed_commits == [leak]
    assert result.commit_map[leak] != leak
    initial = story.repo.git("rev-list", "--max-parents=0", "main")
    assert result.commit_map[initial] == initial
    assert result.blobs_recompressed == 1
    assert result.messages_rewritten == 2  # one commit message, one tag message


def test_rewrite_history_removes_zip_and_binary_with_paths(
    story: Story, tmp_path: Path
) -> None:
    """Archives and binaries holding a key leave history; their paths are listed."""
    mirror = mirror_clone(story.repo.path, tmp_path / "mirror.git")

    result = rewrite_history(mirror, story.secrets)

    removed = {(f.path, f.commit) for f in result.removed_files}
    assert ("dist/bundle.zip", story.zip_commit) in removed
    assert any(path == "bin/tool.bin" for path, _ in removed)
    assert all("sk_" not in f.path for f in result.removed_files)


def test_rewrite_history_refs_tags_and_ref_names(story: Story, tmp_path: Path) -> None:
    """Tags keep their kind; a key in a branch name is renamed and the old ref goes."""
    mirror = mirror_clone(story.repo.path, tmp_path / "mirror.git")
    before = list_refs(story.repo.path)

    result = rewrite_history(mirror, story.secrets)

    after = list_refs(mirror)
    renamed = f"refs/heads/hotfix/{ref_safe_marker(story.key)}"
    assert renamed in after
    assert not any(story.key in name for name in after)
    expected = {name for name in before if story.key not in name} | {renamed}
    assert set(after) == expected
    assert annotated_tags(mirror) == {"refs/tags/v1.0", "refs/tags/v0.9-signed"}
    assert annotated_tags(story.repo.path) == annotated_tags(mirror)
    statuses = {ref.name: ref.status for ref in result.refs}
    assert statuses[renamed] == "created"
    assert all(story.key not in ref.name for ref in result.refs)
    assert any(ref.renamed_from and "…" in ref.renamed_from for ref in result.refs)


def test_rewrite_history_moves_notes_to_rewritten_commits(
    story: Story, tmp_path: Path
) -> None:
    """Notes stay attached: each note is found on the rewritten commit."""
    mirror = mirror_clone(story.repo.path, tmp_path / "mirror.git")

    result = rewrite_history(mirror, story.secrets)

    assert result.notes_moved == 2
    head = subprocess.run(
        ["git", "-C", str(mirror), "rev-parse", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    note = git_bytes(mirror, "notes", "show", head + "~1").decode()
    assert note == f"reviewed; key {MARKER} was rotated\n"
    assert git_bytes(mirror, "notes", "show", head).decode() == "plain note\n"


def test_rewrite_history_reports_removed_signatures(
    story: Story, tmp_path: Path
) -> None:
    """A signed commit the rewrite changes is listed as having lost its signature."""
    mirror = mirror_clone(story.repo.path, tmp_path / "mirror.git")

    result = rewrite_history(mirror, story.secrets)

    assert story.signed_commit in result.signatures_removed
    assert "refs/tags/v0.9-signed" in result.signatures_removed
    assert "refs/tags/v1.0" not in result.signatures_removed
    new = result.commit_map[story.signed_commit]
    assert b"gpgsig" not in git_bytes(mirror, "cat-file", "commit", new)


def test_rewrite_history_in_place_keeps_both_stash_entries(story: Story) -> None:
    """In place, the stash reflog is remapped: stash@{1} survives, without the key."""
    result = rewrite_history(story.repo.path, story.secrets)

    listing = story.repo.git("stash", "list")
    assert "wip one" in listing and "wip two" in listing
    older = story.repo.git("stash", "show", "-p", "stash@{1}")
    assert story.key not in older and MARKER in older
    assert result.commits_rewritten > 0
    assert story.key.encode() not in _all_objects(story.repo.path)
    # The work tree follows the rewritten HEAD and stays clean.
    assert story.repo.git("status", "--porcelain", "--untracked-files=no") == ""


def test_rewrite_history_keeps_submodules_and_reports_lfs(
    repo: object, tmp_path: Path
) -> None:
    """Gitlinks and LFS pointers pass through untouched and are listed."""
    from tests.helpers.gitrepo import GitRepo, fake_key

    git_repo = GitRepo.init(tmp_path / "sub")
    key = fake_key(seed="sub")
    git_repo.commit(
        {
            "a.txt": key,
            "big.bin": "version https://git-lfs.github.com/"
            "spec/v1\noid sha256:" + "ab" * 32 + "\nsize 12\n",
        }
    )
    git_repo.git(
        "update-index", "--add", "--cacheinfo", "160000," + "1" * 40 + ",vendor/lib"
    )
    git_repo.commit(message="add submodule")

    result = rewrite_history(git_repo.path, [key])

    assert result.submodules == ["vendor/lib"]
    assert result.lfs_pointers == ["big.bin"]
    tree = git_repo.git("ls-tree", "HEAD", "vendor/lib")
    assert tree.startswith("160000 commit " + "1" * 40)
