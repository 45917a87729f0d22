"""The repository's current files: the work tree, or HEAD's tree when it is bare.

The work tree view includes untracked files that are not ignored, since the next
``git add .`` would publish them too.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from incident.guard.gitio import RepoPaths, read_objects, resolve_names, run_git

GITLINK_MODE = "160000"
SYMLINK_MODE = "120000"
LFS_POINTER = re.compile(
    rb"\Aversion https://git-lfs\.github\.com/spec/v1\n(?:.*\n)*?"
    rb"oid sha256:([0-9a-f]{64})"
)


@dataclass(frozen=True)
class TreeFile:
    """One current file: its path, whether git tracks it, and its bytes."""

    path: str
    tracked: bool
    data: bytes = field(repr=False)


@dataclass
class CurrentTree:
    """The files, submodules and absent LFS objects of the current tree."""

    files: list[TreeFile] = field(default_factory=list)
    submodules: list[tuple[str, str]] = field(default_factory=list)  # (path, commit)
    lfs_missing: list[tuple[str, str]] = field(default_factory=list)  # (path, oid)
    source: str = "work tree"


def _split_z(raw: bytes) -> list[str]:
    return [p.decode("utf-8", "surrogateescape") for p in raw.split(b"\0") if p]


def _lfs_missing(paths: RepoPaths, data: bytes) -> str | None:
    """Return the LFS oid when data is a pointer whose content is not stored."""
    if not data.startswith(b"version https://git-lfs"):
        return None
    match = LFS_POINTER.match(data)
    if match is None:
        return None
    oid = match.group(1).decode()
    stored = paths.git_dir / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    return None if stored.is_file() else oid


def read_current_tree(paths: RepoPaths) -> CurrentTree:
    """List and read the current files (work tree, or HEAD for a bare repository)."""
    if paths.work_tree is None:
        return _read_head_tree(paths)
    top = paths.work_tree
    tree = CurrentTree(source="work tree")
    staged = run_git(top, "ls-files", "-z", "--stage", "--cached")
    tracked: set[str] = set()
    for entry in _split_z(staged):
        meta, _, path = entry.partition("\t")
        mode, sha, _stage = meta.split(" ")
        if path in tracked:
            continue  # a conflicted file has several stages
        tracked.add(path)
        if mode == GITLINK_MODE:
            tree.submodules.append((path, sha))
            continue
        if mode != SYMLINK_MODE:
            _add_disk_file(paths, tree, path, tracked=True)
    others = run_git(top, "ls-files", "-z", "--others", "--exclude-standard")
    for path in _split_z(others):
        _add_disk_file(paths, tree, path, tracked=False)
    return tree


def _add_disk_file(paths: RepoPaths, tree: CurrentTree, path: str,
                   tracked: bool) -> None:
    assert paths.work_tree is not None
    full = paths.work_tree / path
    if full.is_symlink() or not full.is_file():
        return  # deleted in the work tree, or a link we must not follow
    data = full.read_bytes()
    oid = _lfs_missing(paths, data)
    if oid is not None:
        tree.lfs_missing.append((path, oid))
    tree.files.append(TreeFile(path=path, tracked=tracked, data=data))


def _read_head_tree(paths: RepoPaths) -> CurrentTree:
    tree = CurrentTree(source="HEAD's tree")
    if not resolve_names(paths.git_dir, ["HEAD^{tree}"]):
        return tree  # no commit yet
    listing = run_git(paths.git_dir, "ls-tree", "-r", "-z", "--full-tree", "HEAD")
    blobs: dict[str, str] = {}
    for entry in _split_z(listing):
        meta, _, path = entry.partition("\t")
        mode, kind, sha = meta.split(" ")
        if mode == GITLINK_MODE:
            tree.submodules.append((path, sha))
        elif kind == "blob" and mode != SYMLINK_MODE:
            blobs[path] = sha
    objects = read_objects(paths.git_dir, blobs.values())
    for path, sha in blobs.items():
        obj = objects.get(sha)
        if obj is None:
            continue
        oid = _lfs_missing(paths, obj.data)
        if oid is not None:
            tree.lfs_missing.append((path, oid))
        tree.files.append(TreeFile(path=path, tracked=True, data=obj.data))
    return tree


# Which check looks at a file. Order matters: the first match wins.
CI_PATTERNS = (
    ".github/workflows/*", ".gitlab-ci.yml", ".gitlab-ci.yaml", ".gitlab/*",
    ".circleci/*", "Jenkinsfile", ".travis.yml", "azure-pipelines.yml",
    "bitbucket-pipelines.yml", ".buildkite/*", ".drone.yml",
)
CONTAINER_NAMES = ("Dockerfile", "Dockerfile.*", "*.Dockerfile", "*.dockerfile",
                   "Containerfile", "docker-compose*.yml", "docker-compose*.yaml",
                   "compose.yml", "compose.yaml", "compose.*.yml", "compose.*.yaml")
SECRET_FILE_NAMES = (".env", ".env.*", "*.env", ".envrc", "*.pem", "*.key", "*.p12",
                     "*.pfx", "credentials.json", "secrets.json", "secrets.yml",
                     "secrets.yaml", "secrets.toml", ".netrc", ".npmrc", ".pypirc")
# Names a .gitignore should cover even before such a file exists.
IGNORE_EXPECTED = (".env", ".env.local", ".env.production")
# Templates meant to be committed, with names but no values.
SECRET_FILE_TEMPLATES = (".env.example", ".env.sample", ".env.template", ".env.dist",
                         ".env.defaults", "*.example", "*.sample", "*.template")
_K8S_MANIFEST = re.compile(rb"(?m)^apiVersion:\s*\S+")
_K8S_KIND = re.compile(rb"(?m)^kind:\s*\S+")


def is_secret_file_name(path: str) -> bool:
    """True for files that by their name hold secrets (.env, private keys...)."""
    name = PurePosixPath(path).name
    if any(fnmatch.fnmatchcase(name, p) for p in SECRET_FILE_TEMPLATES):
        return False
    return any(fnmatch.fnmatchcase(name, p) for p in SECRET_FILE_NAMES)


def categorize(file: TreeFile) -> str:
    """Return which check owns file: ci, container, kubernetes, notebook,
    secret-file or source."""
    path = file.path
    name = PurePosixPath(path).name
    if any(fnmatch.fnmatchcase(path, p) or path.startswith(p.rstrip("*"))
           for p in CI_PATTERNS if p.endswith("/*")) or path in CI_PATTERNS:
        return "ci"
    if any(fnmatch.fnmatchcase(name, p) for p in CONTAINER_NAMES):
        return "container"
    if name.endswith(".ipynb"):
        return "notebook"
    if is_secret_file_name(path):
        return "secret-file"
    if name.endswith((".yml", ".yaml", ".json")) and _K8S_MANIFEST.search(file.data) \
            and _K8S_KIND.search(file.data):
        return "kubernetes"
    return "source"
