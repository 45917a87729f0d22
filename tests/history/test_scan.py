"""History scan: every hiding place in a real repository, with exact locations."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest

from incident.errors import NotARepositoryError
from incident.history import Finding, ScanReport, scan_repository
from tests.helpers.gitrepo import GitRepo, fake_key

KEY = fake_key(seed="history")
OTHER = fake_key(seed="history-other")


def only(report: ScanReport) -> Finding:
    assert len(report.findings) == 1, [f.to_dict() for f in report.findings]
    return report.findings[0]


def test_scan_removed_key_keeps_first_commit_and_line(repo: GitRepo) -> None:
    """A key committed then removed is found on the commit that added it."""
    repo.commit({"README.md": "app\n"}, "init")
    added = repo.commit({"app/config.py": f"import os\n\nKEY = '{KEY}'\n"}, "add")
    repo.commit({"app/config.py": "import os\nKEY = os.environ['K']\n"}, "remove")

    finding = only(scan_repository(repo.path))

    [location] = finding.locations
    assert (location.commit, location.path, location.line) == (
        added,
        "app/config.py",
        3,
    )
    assert finding.first_seen is not None
    assert finding.first_seen.sha == added
    assert finding.first_seen.committer_date == "2024-01-01T02:00:00Z"
    assert finding.first_seen.author_email == "dana@example.com"
    assert finding.refs == ["refs/heads/main"]
    assert finding.present_at_tips == []
    assert finding.reachable


def test_scan_branch_tag_and_custom_refs(repo: GitRepo) -> None:
    """Refs that carry the key are listed: branches, tags and any other refs/*."""
    repo.commit({"a.txt": "a\n"}, "init")
    repo.branch("feature")
    repo.checkout("feature")
    repo.commit({"k.env": f"K={KEY}\n"}, "key on a branch")
    repo.tag("v1.0", "release")
    repo.git("update-ref", "refs/custom/keep", "HEAD")
    repo.checkout("main")

    finding = only(scan_repository(repo.path))

    assert sorted(finding.refs) == [
        "refs/custom/keep",
        "refs/heads/feature",
        "refs/tags/v1.0",
    ]
    assert finding.present_at_tips == ["refs/heads/feature"]


def test_scan_remote_tracking_ref(tmp_path: Path) -> None:
    """A key that only exists on a fetched remote branch is found there."""
    origin = GitRepo.init(tmp_path / "origin")
    origin.commit({"a": "a\n"}, "init")
    subprocess.run(
        ["git", "clone", "-q", str(origin.path), str(tmp_path / "clone")], check=True
    )
    origin.branch("leak")
    origin.checkout("leak")
    origin.commit({"s.py": f"K='{KEY}'\n"}, "leak")
    clone = GitRepo(tmp_path / "clone")
    clone.git("fetch", "-q", "origin")

    finding = only(scan_repository(clone.path))

    assert finding.refs == ["refs/remotes/origin/leak"]
    assert finding.present_at_tips == ["refs/remotes/origin/leak"]


def test_scan_stash_and_its_reflog(repo: GitRepo) -> None:
    """Keys in the stash and in older stash entries (its reflog) are found."""
    repo.commit({"app.py": "x\n"}, "init")
    (repo.path / "app.py").write_text(f"x = '{KEY}'\n")
    repo.git("stash", "-q")
    (repo.path / "app.py").write_text("y\n")
    repo.git("stash", "-q")

    finding = only(scan_repository(repo.path))

    assert finding.refs == ["reflog:refs/stash@{1}"]
    assert {loc.path for loc in finding.locations} == {"app.py"}


def test_scan_notes(repo: GitRepo) -> None:
    """A key in a git note is reported as a note on the annotated commit."""
    target = repo.commit({"a": "a\n"}, "init")
    repo.git("notes", "add", "-m", f"deploy key {KEY}", target)

    finding = only(scan_repository(repo.path))

    [location] = finding.locations
    assert location.source == "note"
    assert location.annotated_commit == target
    assert finding.refs == ["refs/notes/commits"]


def test_scan_commit_and_tag_messages(repo: GitRepo) -> None:
    """Commit messages and annotated tag messages are scanned with line numbers."""
    commit = repo.commit({"a": "a\n"}, f"subject\n\nused {KEY} to test")
    repo.tag("v2", f"release\n\nold key {OTHER}")

    report = scan_repository(repo.path)

    by_secret = {f.secret: f for f in report.findings}
    [message] = by_secret[KEY].locations
    [tag] = by_secret[OTHER].locations
    assert (message.source, message.commit, message.line) == (
        "commit-message",
        commit,
        3,
    )
    assert (tag.source, tag.tag, tag.line) == ("tag-message", "v2", 3)
    assert by_secret[OTHER].refs == ["refs/tags/v2"]


def test_scan_reflog_only_commit(repo: GitRepo) -> None:
    """A commit only the reflog still holds (after a reset) is found and named."""
    repo.commit({"a": "a\n"}, "init")
    repo.commit({"a": f"{KEY}\n"}, "oops")
    repo.git("reset", "-q", "--hard", "HEAD~1")

    finding = only(scan_repository(repo.path))

    assert finding.reachable
    assert finding.refs
    assert all(ref.startswith("reflog:") for ref in finding.refs)


def test_scan_unreachable_commit_and_dangling_blob(repo: GitRepo) -> None:
    """Objects no ref or reflog holds are still found, and marked unreachable."""
    repo.commit({"a": "a\n"}, "init")
    lost = repo.commit({"b": f"{KEY}\n"}, "lost")
    repo.git("reset", "-q", "--hard", "HEAD~1")
    repo.git("reflog", "expire", "--expire=now", "--all")
    repo.git("hash-object", "-w", "--stdin", input=f"{OTHER}\n".encode())

    report = scan_repository(repo.path)

    by_secret = {f.secret: f for f in report.findings}
    [in_commit] = by_secret[KEY].locations
    [dangling] = by_secret[OTHER].locations
    assert (in_commit.commit, in_commit.path, in_commit.reachable) == (lost, "b", False)
    assert (dangling.commit, dangling.path, dangling.reachable) == (None, None, False)
    assert not by_secret[OTHER].reachable


def test_scan_merge_conflict_resolution(repo: GitRepo) -> None:
    """A key that only the merge commit's resolution added is placed on the merge."""
    repo.commit({"conf.py": "K = None\n"}, "init")
    repo.branch("other")
    repo.commit({"conf.py": "K = 'main'\n"}, "main side")
    repo.checkout("other")
    repo.commit({"conf.py": "K = 'other'\n"}, "other side")
    repo.checkout("main")
    result = subprocess.run(
        ["git", "-C", str(repo.path), "merge", "-q", "other"],
        capture_output=True,
        env=repo.env(),
        check=False,
    )
    assert result.returncode != 0
    (repo.path / "conf.py").write_text(f"K = '{KEY}'\n")
    repo.git("add", "conf.py")
    repo.tick()
    repo.git("commit", "-q", "--no-edit")
    merge = repo.head()

    finding = only(scan_repository(repo.path))

    [location] = finding.locations
    assert (location.commit, location.path, location.line) == (merge, "conf.py", 1)


def test_scan_merge_of_a_branch_is_not_an_extra_location(repo: GitRepo) -> None:
    """A plain merge carries the branch's key but did not introduce it."""
    repo.commit({"a": "a\n"}, "init")
    repo.branch("f")
    repo.checkout("f")
    added = repo.commit({"k": f"{KEY}\n"}, "key")
    repo.checkout("main")
    repo.commit({"b": "b\n"}, "main moves")
    repo.tick()
    repo.git("merge", "-q", "--no-edit", "f")

    finding = only(scan_repository(repo.path))

    assert [loc.commit for loc in finding.locations] == [added]


def test_scan_same_blob_at_two_paths_in_different_commits(repo: GitRepo) -> None:
    """Each location names a commit where that path really holds the key."""
    first = repo.commit({"one.env": f"K={KEY}\n"}, "one")
    second = repo.commit({"one.env": None, "two.env": f"K={KEY}\n"}, "move")

    finding = only(scan_repository(repo.path))

    placed = {(loc.commit, loc.path) for loc in finding.locations}
    assert placed == {(first, "one.env"), (second, "two.env")}


def test_scan_encoded_hiding_places(repo: GitRepo) -> None:
    """UTF-16, base64, gzip and binary content hide nothing."""
    import gzip

    secret = base64.b64encode(f"{KEY}".encode()).decode()
    repo.commit(
        {
            "k8s/secret.yaml": (
                f"apiVersion: v1\nkind: Secret\ndata:\n  key: {secret}\n"
            ),
            "win.txt": f"a\r\nkey={OTHER}\r\n".encode("utf-16"),
            "dump.gz": gzip.compress(f"{KEY}\n".encode()),
        },
        "encoded",
    )

    report = scan_repository(repo.path)

    places = {
        (loc.path, loc.line, loc.encoding)
        for f in report.findings
        for loc in f.locations
    }
    assert places == {
        ("k8s/secret.yaml", 4, "base64"),
        ("win.txt", 2, "utf-16"),
        ("dump.gz", 1, "gzip+plain"),
    }


def test_scan_non_utf8_path_packed_and_loose(repo: GitRepo) -> None:
    """Paths that are not UTF-8 survive; packed and loose objects are both read."""
    repo.commit({b"caf\xe9/cl\xe9.txt": f"{KEY}\n"}, "latin-1 path")
    repo.git("gc", "-q")
    repo.commit({"loose.txt": f"{OTHER}\n"}, "loose")

    report = scan_repository(repo.path)

    paths = {loc.path for f in report.findings for loc in f.locations}
    assert paths == {"caf\\xe9/cl\\xe9.txt", "loose.txt"}


def test_scan_bare_mirror_and_worktree(repo: GitRepo, tmp_path: Path) -> None:
    """Bare mirrors and linked worktrees give the same findings as the clone."""
    repo.commit({"k": f"{KEY}\n"}, "key")
    mirror = tmp_path / "mirror.git"
    subprocess.run(
        ["git", "clone", "-q", "--mirror", str(repo.path), str(mirror)], check=True
    )
    repo.git("worktree", "add", "-q", str(tmp_path / "wt"), "-b", "wt")

    for path in (mirror, tmp_path / "wt"):
        finding = only(scan_repository(path))
        assert finding.secret == KEY


def test_scan_lfs_pointer_content(repo: GitRepo) -> None:
    """LFS content in the local store is scanned; absent content is listed."""
    import hashlib

    present = f"{KEY}\n".encode()
    oid = hashlib.sha256(present).hexdigest()
    store = repo.path / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4]
    store.mkdir(parents=True)
    (store / oid).write_bytes(present)
    absent = "0" * 63 + "1"

    def pointer(sha: str) -> str:
        return (
            f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize 10\n"
        )

    repo.commit({"big.bin": pointer(oid), "huge.bin": pointer(absent)}, "lfs")

    report = scan_repository(repo.path)

    [location] = only(report).locations
    assert (location.path, location.encoding) == ("big.bin", "lfs+plain")
    assert [u.kind for u in report.unscanned] == ["lfs-missing"]
    assert not report.incomplete


def test_scan_submodule_listed_as_not_scanned(repo: GitRepo, tmp_path: Path) -> None:
    """A submodule is an unknown, named with its path, never a silent pass."""
    sub = GitRepo.init(tmp_path / "sub")
    sub_commit = sub.commit({"x": "x\n"}, "sub")
    repo.commit({"a": "a\n"}, "init")
    repo.git("submodule", "add", "-q", str(sub.path), "vendor/lib")
    repo.commit(None, "add submodule")

    report = scan_repository(repo.path)

    [item] = report.unscanned
    assert (item.kind, item.object_id, item.path) == (
        "submodule",
        sub_commit,
        "vendor/lib",
    )
    assert report.clean


def test_scan_embedded_repository_without_gitmodules(
    repo: GitRepo, tmp_path: Path
) -> None:
    """A gitlink added without .gitmodules (an embedded clone) is listed too."""
    sub = GitRepo.init(tmp_path / "sub")
    sub_commit = sub.commit({"x": "x\n"}, "sub")
    repo.commit({"a": "a\n"}, "init")
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{sub_commit},lib")
    repo.commit(None, "add embedded repository")

    [item] = scan_repository(repo.path).unscanned

    assert (item.kind, item.path) == ("submodule", "lib")


def test_scan_shallow_clone_is_incomplete(repo: GitRepo, tmp_path: Path) -> None:
    """A shallow clone is never reported clean."""
    for n in range(3):
        repo.commit({"f": f"{n}\n"}, f"c{n}")
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth=1", f"file://{repo.path}", str(shallow)],
        check=True,
    )

    report = scan_repository(shallow)

    assert report.incomplete
    assert not report.clean
    assert "shallow" in [u.kind for u in report.unscanned]


def _loose_path(repo: GitRepo, oid: str) -> Path:
    return repo.path / ".git" / "objects" / oid[:2] / oid[2:]


def test_scan_missing_blob_is_named_and_rest_still_scanned(repo: GitRepo) -> None:
    """One missing blob makes the scan incomplete; later history is still scanned."""
    repo.commit({"gone.txt": "will vanish\n"}, "first")
    repo.commit({"k.txt": f"{KEY}\n"}, "second")
    gone = repo.git("rev-parse", "HEAD:gone.txt")
    os.remove(_loose_path(repo, gone))

    report = scan_repository(repo.path)

    assert report.incomplete
    [missing] = [u for u in report.unscanned if u.kind == "missing-object"]
    assert (missing.object_id, missing.path) == (gone, "gone.txt")
    assert only(report).secret == KEY


def test_scan_corrupt_object_is_named_and_rest_still_scanned(repo: GitRepo) -> None:
    """A corrupt object breaks git's stream; we record it and read the others."""
    for n in range(5):
        repo.commit({f"f{n}.txt": f"filler {n}\n"}, f"c{n}")
    repo.commit({"k.txt": f"{KEY}\n"}, "key")
    broken = repo.git("rev-parse", "HEAD~2:f3.txt")
    path = _loose_path(repo, broken)
    os.chmod(path, 0o644)
    path.write_bytes(b"\x78\x01garbage-not-zlib")

    report = scan_repository(repo.path)

    assert report.incomplete
    assert broken in {u.object_id for u in report.unscanned}
    assert only(report).secret == KEY


def test_scan_corrupt_packed_object(repo: GitRepo) -> None:
    """A corrupt object inside a pack kills git's stream; the scan goes on after it."""
    for n in range(5):
        repo.commit({f"f{n}.txt": f"filler {n} " * 200 + "\n"}, f"c{n}")
    repo.commit({"k.txt": f"{KEY}\n"}, "key")
    repo.git("gc", "-q")
    broken = repo.git("rev-parse", "HEAD~2:f3.txt")
    [pack] = (repo.path / ".git" / "objects" / "pack").glob("*.pack")
    listing = repo.git("verify-pack", "-v", str(pack.with_suffix(".idx")))
    [entry] = [line.split() for line in listing.splitlines() if line.startswith(broken)]
    offset, size = int(entry[4]), int(entry[3])
    data = bytearray(pack.read_bytes())
    for index in range(offset + 4, offset + size - 2):
        data[index] ^= 0x55
    os.chmod(pack, 0o644)
    pack.write_bytes(bytes(data))

    report = scan_repository(repo.path)

    assert [u.object_id for u in report.unscanned] == [broken]
    assert report.unscanned[0].kind == "corrupt-object"
    assert only(report).secret == KEY


def test_scan_placeholders_only_with_show_ignored(repo: GitRepo) -> None:
    """Placeholders are never findings; --show-ignored lists them with a reason."""
    repo.commit(
        {
            "README.md": "Set STRIPE_KEY=sk_"
            + "live_... or sk_"
            + "test_"
            + "X" * 24
            + "\n"
        },
        "docs",
    )

    quiet = scan_repository(repo.path)
    shown = scan_repository(repo.path, show_ignored=True)

    assert quiet.findings == [] and quiet.ignored == []
    assert quiet.clean
    assert {f.ignored for f in shown.ignored} == {
        "placeholder text",
        "placeholder text ('xxxx')",
    }


def test_scan_publishable_only_on_request(repo: GitRepo) -> None:
    """Publishable keys are not secrets: listed only with include_publishable."""
    pk = fake_key("pk_" + "live_", seed="pk")
    repo.commit({"web.js": f"Stripe('{pk}')\n"}, "frontend")

    assert scan_repository(repo.path).clean
    report = scan_repository(repo.path, include_publishable=True)
    assert [f.secret for f in report.publishable] == [pk]
    assert report.publishable[0].severity == "low"


def test_scan_key_in_ref_name(repo: GitRepo) -> None:
    """A key pasted into a branch name is found there."""
    repo.commit({"a": "a\n"}, "init")
    repo.branch(f"fix-{KEY}")

    finding = only(scan_repository(repo.path))

    assert [loc.source for loc in finding.locations] == ["ref-name"]


def test_scan_not_a_repository(tmp_path: Path) -> None:
    """A folder without a repository is a clear error, not an empty result."""
    with pytest.raises(NotARepositoryError):
        scan_repository(tmp_path)
