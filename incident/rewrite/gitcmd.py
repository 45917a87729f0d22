"""Small git plumbing helpers the purge needs: run, refs, checks, backup, cleanup."""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from incident.errors import GitError, NotARepositoryError, RefusedError
from incident.redact import redact_text

logger = logging.getLogger(__name__)


def git_env() -> dict[str, str]:
    """Environment for git: no pager, no prompts, a stable C locale."""
    return {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_PAGER": "cat"}


def run_git(repo: Path, *args: str, input: bytes | None = None,
            check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """Run one git command in repo and return the completed process (bytes).

    Raises:
        GitError: git exited non-zero and check is set; stderr is redacted.
    """
    command = ["git", "-C", str(repo), *args]
    logger.debug("git %s", " ".join(args[:3]))
    result = subprocess.run(command, input=input, capture_output=True,
                            env=git_env(), check=False)
    if check and result.returncode != 0:
        detail = redact_text(result.stderr.decode("utf-8", "replace").strip())
        raise GitError(f"git {' '.join(args[:2])} failed in {repo}: {detail}",
                       "Check the repository with: git -C "
                       f"{repo} fsck, then run the purge again.")
    return result


def git_text(repo: Path, *args: str) -> str:
    """Run git and return its stdout decoded and stripped."""
    return run_git(repo, *args).stdout.decode("utf-8", "surrogateescape").strip()


def git_dir(repo: Path) -> Path:
    """The absolute git directory of repo (repo itself for a bare repository).

    Raises:
        NotARepositoryError: repo is not a git repository.
    """
    if not repo.is_dir():
        raise NotARepositoryError(f"{repo} is not a directory",
                                  "Pass the path of a git repository.")
    result = run_git(repo, "rev-parse", "--absolute-git-dir", check=False)
    if result.returncode != 0:
        raise NotARepositoryError(f"{repo} is not a git repository",
                                  "Pass the path of a git repository (or its clone).")
    return Path(result.stdout.decode().strip())


def is_bare(repo: Path) -> bool:
    return git_text(repo, "rev-parse", "--is-bare-repository") == "true"


def is_shallow(repo: Path) -> bool:
    return git_text(repo, "rev-parse", "--is-shallow-repository") == "true"


def has_uncommitted_changes(repo: Path) -> bool:
    """True when the work tree or index differs from HEAD (untracked files ignored)."""
    if is_bare(repo):
        return False
    status = run_git(repo, "status", "--porcelain", "--untracked-files=no").stdout
    return bool(status.strip())


@dataclass(frozen=True)
class Worktree:
    """One working tree of a repository, from `git worktree list --porcelain`."""

    path: Path
    head: str | None
    branch: str | None
    bare: bool


def worktrees(repo: Path) -> list[Worktree]:
    """Every working tree sharing repo's objects and refs; the main one first."""
    raw = run_git(repo, "worktree", "list", "--porcelain").stdout.decode(
        "utf-8", "surrogateescape")
    found: list[Worktree] = []
    for block in raw.strip().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.partition(" ")
            fields[key] = value
        if "worktree" in fields:
            found.append(Worktree(Path(fields["worktree"]), fields.get("HEAD"),
                                  fields.get("branch"), "bare" in fields))
    return found


def main_repository(repo: Path) -> Path:
    """The repository whose git directory holds the refs: for a linked worktree,
    its main working tree (or the bare repository it was added to)."""
    trees = worktrees(repo)
    return trees[0].path if trees else repo


def list_refs(repo: Path) -> dict[str, str]:
    """Every ref (name -> object id), HEAD excluded."""
    output = run_git(repo, "for-each-ref", "--format=%(objectname) %(refname)").stdout
    refs: dict[str, str] = {}
    for line in output.decode("utf-8", "surrogateescape").splitlines():
        sha, _, name = line.partition(" ")
        refs[name] = sha
    return refs


def annotated_tags(repo: Path) -> set[str]:
    """Names of refs/tags/* that point at a tag object (annotated tags)."""
    output = run_git(repo, "for-each-ref", "--format=%(objecttype) %(refname)",
                     "refs/tags").stdout.decode("utf-8", "surrogateescape")
    return {line.split(" ", 1)[1] for line in output.splitlines()
            if line.startswith("tag ")}


def refuse_unsafe_source(repo: Path, *, in_place: bool) -> None:
    """Refuse a shallow clone, and a dirty work tree when rewriting in place.

    Raises:
        RefusedError: the rewrite would miss history or lose the user's changes.
    """
    if is_shallow(repo):
        raise RefusedError(
            f"{repo} is a shallow clone: the history before its cut-off was never "
            "downloaded, so a rewrite could not remove keys from it.",
            f"Fetch the whole history first: git -C {repo} fetch --unshallow, "
            f"then run: incident purge {repo}",
        )
    if not in_place:
        return
    # Every working tree of the repository is rewritten with it.
    for tree in worktrees(repo) or [Worktree(repo, None, None, False)]:
        if tree.bare:
            continue
        if not tree.path.is_dir():
            raise RefusedError(
                f"the worktree {tree.path} of {repo} is missing; its leftover "
                "records would keep the old history alive.",
                f"Clean them up with git -C {repo} worktree prune, then run the "
                "purge again.",
            )
        if has_uncommitted_changes(tree.path):
            raise RefusedError(
                f"{tree.path} has uncommitted changes; an in-place rewrite needs "
                "every working tree of the repository clean.",
                "Commit or stash them there, then run the same command again.",
            )


def refresh_worktrees(repo: Path, commit_map: dict[str, str]) -> None:
    """Move every other working tree onto the rewritten history.

    git-filter-repo resets only the tree it runs in; the others keep an index and
    a HEAD on the old commits, which would keep the keys alive through gc.
    """
    for tree in worktrees(repo)[1:]:
        if tree.bare or not tree.path.is_dir():
            continue
        if tree.branch is None and tree.head:
            run_git(tree.path, "reset", "-q", "--hard",
                    commit_map.get(tree.head, tree.head))
        else:
            run_git(tree.path, "reset", "-q", "--hard")


def create_backup(repo: Path, bundle: Path) -> Path:
    """Bundle every ref of repo into bundle (mode 0600) and check it.

    Raises:
        GitError: git could not write or verify the bundle.
    """
    bundle.parent.mkdir(parents=True, exist_ok=True)
    # The bundle holds the secrets: a 077 umask makes git create it 0600, so it
    # is never readable by others, not even while it is being written.
    old_umask = os.umask(0o077)
    try:
        run_git(repo, "bundle", "create", "--quiet", str(bundle), "--all")
    finally:
        os.umask(old_umask)
    os.chmod(bundle, 0o600)
    run_git(repo, "bundle", "verify", "--quiet", str(bundle))
    return bundle


def mirror_clone(source: Path, target: Path) -> Path:
    """Clone source with --mirror into target (created 0700), objects copied."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        raise RefusedError(f"{target} already exists; a rewrite needs a fresh mirror.",
                           "Remove it or pass another --workdir.")
    old_umask = os.umask(0o077)
    try:
        # --no-local copies objects instead of hard-linking them: the rewrite then
        # prunes its own copies and never touches the source's object files.
        run_git(target.parent, "clone", "--quiet", "--mirror", "--no-local",
                str(source.resolve()), str(target))
    finally:
        os.umask(old_umask)
    return target


def expire_and_prune(repo: Path) -> None:
    """Expire every reflog (the stash's entries excepted) and prune loose objects."""
    refs = [name for name in list_refs(repo) if name != "refs/stash"]
    logs = git_dir(repo) / "logs"
    names = [*refs, "HEAD"]
    existing = [name for name in names if (logs / name).exists()]
    if existing:
        run_git(repo, "reflog", "expire", "--expire=now",
                "--expire-unreachable=now", *existing)
    for tree in worktrees(repo)[1:]:
        # Each linked working tree keeps its own HEAD reflog.
        if not tree.bare and tree.path.is_dir():
            run_git(tree.path, "reflog", "expire", "--expire=now",
                    "--expire-unreachable=now", "HEAD")
    run_git(repo, "gc", "--quiet", "--prune=now")
    for name in _PAST_STATE_FILES:
        # Records of past fetches, resets and commits: they name old ids, old ref
        # names and old messages, any of which can hold a key. Git recreates them.
        (git_dir(repo) / name).unlink(missing_ok=True)


_PAST_STATE_FILES = ("FETCH_HEAD", "ORIG_HEAD", "COMMIT_EDITMSG", "SQUASH_MSG")


def signed_objects(repo: Path) -> dict[str, Any]:
    """Signed commits (ids) and signed annotated tags (ref -> tag object id)."""
    commits: set[str] = set()
    raw = run_git(repo, "rev-list", "--all", "--header").stdout
    for record in raw.split(b"\0"):
        header = record.split(b"\n\n", 1)[0]
        if b"\ngpgsig " in header or b"\ngpgsig-sha256 " in header:
            commits.add(record.split(b"\n", 1)[0].strip().decode())
    tags: dict[str, str] = {}
    listing = run_git(repo, "for-each-ref", "refs/tags",
                      "--format=%(objecttype)%00%(objectname)%00%(refname)%00"
                      "%(contents:signature)%00%01").stdout
    for entry in listing.split(b"\x01"):
        parts = entry.strip(b"\n").split(b"\0")
        if len(parts) >= 4 and parts[0] == b"tag" and parts[3].strip():
            tags[parts[2].decode("utf-8", "surrogateescape")] = parts[1].decode()
    return {"commits": commits, "tags": tags}
