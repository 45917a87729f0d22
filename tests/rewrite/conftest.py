"""Repositories with keys in every hiding place, and a history comparer."""

from __future__ import annotations

import base64
import gzip
import io
import json
import subprocess
import urllib.parse
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.gitrepo import GitRepo, fake_key

MARKER = "***STRIPE-KEY-REMOVED***"


@dataclass
class Story:
    """A repository whose history leaks keys in many forms."""

    repo: GitRepo
    key: str
    other_key: str
    zip_commit: str
    signed_commit: str

    @property
    def secrets(self) -> list[str]:
        return [self.key, self.other_key]


def _zip_with(content: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config/secrets.env", content)
    return buffer.getvalue()


def _sign(repo: GitRepo) -> str:
    """Give HEAD a (fake) gpgsig header, the way a signed commit stores it."""
    raw = subprocess.run(
        ["git", "-C", str(repo.path), "cat-file", "commit", "HEAD"],
        check=True,
        capture_output=True,
    ).stdout
    header, _, message = raw.partition(b"\n\n")
    signature = (
        b"gpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEz\n -----END PGP SIGNATURE-----"
    )
    signed = header + b"\n" + signature + b"\n\n" + message
    sha = (
        subprocess.run(
            [
                "git",
                "-C",
                str(repo.path),
                "hash-object",
                "-t",
                "commit",
                "-w",
                "--stdin",
            ],
            input=signed,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .strip()
    )
    repo.git("update-ref", "refs/heads/main", sha)
    return sha


def _signed_tag(repo: GitRepo, name: str, target: str) -> None:
    """An annotated tag whose message carries a (fake) PGP signature block."""
    sha = repo.git("rev-parse", target)
    body = (
        f"object {sha}\ntype commit\ntag {name}\n"
        "tagger Dana Dev <dana@example.com> 1704067200 +0000\n\nSigned release\n"
        "-----BEGIN PGP SIGNATURE-----\n\niQEz\n-----END PGP SIGNATURE-----\n"
    )
    tag = repo.git("mktag", input=body.encode())
    repo.git("update-ref", f"refs/tags/{name}", tag)


def build_story(path: Path) -> Story:
    """Merges, tags, notes, stash, a non-UTF-8 path and encoded keys."""
    key = fake_key(seed="story-one")
    other = fake_key("rk_" + "live_", seed="story-two")
    repo = GitRepo.init(path)
    repo.commit({"README.md": "hello\n"}, message="Initial commit")
    repo.commit(
        {"app/settings.py": f'STRIPE_KEY = "{key}"\n'},
        message=f"Add settings with {key}",
    )
    repo.tag("v0.1")  # lightweight
    repo.branch("feature")
    repo.checkout("feature")
    repo.commit(
        {
            "deploy/secret.yaml": "apiVersion: v1\nkind: Secret\ndata:\n  stripe: "
            + base64.b64encode(key.encode()).decode()
            + "\n",
            "notes.txt": ("key=" + key + "\n").encode("utf-16-le"),
            "notes-be.txt": ("\ufeffkey=" + other + "\n").encode("utf-16-be"),
        },
        message="Feature: deploy",
    )
    repo.commit(
        {
            "web/config.json": json.dumps(
                {"k": "".join(f"\\u{ord(c):04x}" for c in key)}
            ),
            "web/link.txt": "https://x.test/?k="
            + urllib.parse.quote(key, safe="").replace("_", "%5F")
            + "\n",
            "web/data.gz": gzip.compress(f"key={other}\n".encode(), mtime=0),
            "bin/tool.bin": b"\x00\x01ELF" + other.encode() + b"\x00\x02",
        },
        message="Feature: web",
    )
    repo.checkout("main")
    repo.commit(
        {b"caf\xe9/r\xe9sum\xe9.txt": f"{other}\n".encode("latin-1")},
        message="Latin-1 path",
    )
    repo.tick()
    repo.git("merge", "--no-ff", "-q", "-m", "Merge feature", "feature")
    repo.commit({"dist/bundle.zip": _zip_with(f"STRIPE={key}\n")}, message="Bundle")
    zip_commit = repo.head()
    repo.commit(
        {
            "app/settings.py": 'STRIPE_KEY = os.environ["STRIPE_KEY"]\n',
            "deploy/secret.yaml": None,
            "dist/bundle.zip": None,
        },
        message="Remove the key",
    )
    signed = _sign(repo)
    repo.tag("v1.0", message=f"Release 1.0 (rotated {other})")
    _signed_tag(repo, "v0.9-signed", "HEAD~1")
    repo.git("notes", "add", "-m", f"reviewed; key {key} was rotated", "HEAD~1")
    repo.git("notes", "add", "-m", "plain note", "HEAD")
    repo.branch("hotfix/" + key)  # a ref name that holds a key
    # Two stash entries, the older one with a key.
    repo.write({"README.md": f"wip {key}\n"})
    repo.git("stash", "push", "-q", "-m", "wip one")
    repo.write({"README.md": "wip two\n"})
    repo.git("stash", "push", "-q", "-m", "wip two")
    return Story(repo, key, other, zip_commit, signed)


@pytest.fixture
def story(tmp_path: Path) -> Story:
    """The leaky story repository (non-bare, on main, clean work tree)."""
    return build_story(tmp_path / "story")


def git_bytes(path: Path, *args: str) -> bytes:
    return subprocess.run(
        ["git", "-C", str(path), *args], check=True, capture_output=True
    ).stdout


def commits(path: Path) -> list[dict[str, bytes]]:
    """Every commit reachable from any ref, oldest first, with its metadata."""
    fields = "%H%x00%P%x00%an%x00%ae%x00%ad%x00%cn%x00%ce%x00%cd%x00%T%x00%B"
    raw = git_bytes(
        path,
        "log",
        "--all",
        "--topo-order",
        "--reverse",
        "--date=raw",
        f"--format={fields}%x01",
    )
    rows = []
    for record in raw.split(b"\x01")[:-1]:
        parts = record.lstrip(b"\n").split(b"\0")
        keys = ["sha", "parents", "an", "ae", "ad", "cn", "ce", "cd", "tree", "msg"]
        rows.append(dict(zip(keys, parts, strict=True)))
    return rows


def tree_entries(path: Path, tree: bytes) -> dict[bytes, tuple[bytes, bytes]]:
    """path -> (mode, object id) for every entry of a tree, recursively."""
    raw = git_bytes(path, "ls-tree", "-r", "-z", "--full-tree", tree.decode())
    entries = {}
    for item in raw.split(b"\0"):
        if not item:
            continue
        meta, name = item.split(b"\t", 1)
        mode, _kind, sha = meta.split(b" ")
        entries[name] = (mode, sha)
    return entries


def scrub(data: bytes, secrets: list[str]) -> bytes:
    """What the rewrite should have made of data (via the shared replacer)."""
    from incident.rewrite.encodings import SecretReplacer

    return SecretReplacer(secrets, MARKER).replace(data).data


def translate_hashes(message: bytes, commit_map: dict[str, str]) -> bytes:
    """filter-repo rewrites abbreviated commit ids in messages; expect that too."""
    import re

    def one(match: re.Match[bytes]) -> bytes:
        short = match.group().decode()
        full = [old for old in commit_map if old.startswith(short)]
        if len(full) != 1:
            return match.group()
        return commit_map[full[0]][: len(short)].encode()

    return re.sub(rb"\b[0-9a-f]{7,40}\b", one, message)


def assert_same_history(
    original: Path,
    rewritten: Path,
    commit_map: dict[str, str],
    secrets: list[str],
    removed: set[bytes],
) -> None:
    """Commit by commit: same count, people, dates, messages and trees, modulo keys."""
    old_commits = {c["sha"].decode(): c for c in commits(original)}
    new_commits = {c["sha"].decode(): c for c in commits(rewritten)}
    notes_refs = {c for c in old_commits if old_commits[c]["msg"].startswith(b"Notes")}
    assert len(new_commits) >= len(old_commits) - 0
    for sha, old in old_commits.items():
        new_sha = commit_map.get(sha, sha)
        if sha in notes_refs:
            continue
        new = new_commits[new_sha]
        for field in ("an", "ae", "ad", "cn", "ce", "cd"):
            assert new[field] == old[field], (sha, field)
        expected_message = translate_hashes(scrub(old["msg"], secrets), commit_map)
        assert new["msg"] == expected_message, sha
        mapped_parents = [
            commit_map.get(p.decode(), p.decode()).encode()
            for p in old["parents"].split()
        ]
        assert new["parents"].split() == mapped_parents, sha
        old_tree = tree_entries(original, old["tree"])
        new_tree = tree_entries(rewritten, new["tree"])
        expected_paths = {scrub(p, secrets) for p in old_tree if p not in removed}
        assert set(new_tree) == expected_paths, sha
        for name, (mode, blob) in old_tree.items():
            if name in removed:
                continue
            new_mode, new_blob = new_tree[scrub(name, secrets)]
            assert new_mode == mode
            if mode == b"160000":
                assert new_blob == blob
                continue
            before = git_bytes(original, "cat-file", "blob", blob.decode())
            after = git_bytes(rewritten, "cat-file", "blob", new_blob.decode())
            assert after == scrub(before, secrets), (sha, name)
