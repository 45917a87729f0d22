"""Re-key what git-filter-repo leaves on the old commit ids: notes and the stash.

filter-repo passes notes commits through untouched (their trees name commits by
their old ids), and it only rewrites the stash reflog as part of its own cleanup,
which we replace with ours. Both are fixed here from the commit map.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from incident.errors import GitError
from incident.redact import redact_text
from incident.rewrite.gitcmd import git_env, list_refs, run_git

NULL_SHA = "0" * 40


def read_stash_log(directory: Path) -> list[bytes]:
    """The stash reflog's lines (old ids), read before filter-repo runs."""
    path = directory / "logs" / "refs" / "stash"
    return path.read_bytes().splitlines() if path.exists() else []


def write_stash_log(directory: Path, lines: list[bytes],
                    commit_map: dict[str, str]) -> None:
    """Point every stash entry at its rewritten commit, so stash@{n} survives."""
    previous = NULL_SHA.encode()
    out = []
    for line in lines:
        _old, new, rest = line.split(None, 2)
        mapped = commit_map.get(new.decode(), new.decode()).encode()
        if mapped == NULL_SHA.encode():
            continue
        out.append(b" ".join([previous, mapped, rest]))
        previous = mapped
    (directory / "logs" / "refs" / "stash").write_bytes(b"\n".join(out) + b"\n")


def move_notes(repo: Path, commit_map: dict[str, str]) -> int:
    """Re-key every notes tree by the rewritten commit ids; return notes moved."""
    moved = 0
    for ref in (name for name in list_refs(repo) if name.startswith("refs/notes/")):
        listing = run_git(repo, "notes", "--ref", ref, "list").stdout.decode()
        entries = [line.split() for line in listing.splitlines() if line.strip()]
        remapped = []
        changed = 0
        for blob, target in entries:
            new_target = commit_map.get(target, target)
            if new_target == NULL_SHA:
                changed += 1
                continue
            changed += new_target != target
            remapped.append((blob, new_target))
        if not changed:
            continue
        _commit_notes_tree(repo, ref, remapped)
        moved += changed
    return moved


def _commit_notes_tree(repo: Path, ref: str, entries: list[tuple[str, str]]) -> None:
    """Write a flat notes tree (git reads flat and fanned-out trees alike)."""
    with tempfile.TemporaryDirectory() as scratch:
        env = {**git_env(), "GIT_INDEX_FILE": os.path.join(scratch, "index"),
               "GIT_AUTHOR_NAME": "incident purge",
               "GIT_AUTHOR_EMAIL": "incident-purge@localhost",
               "GIT_COMMITTER_NAME": "incident purge",
               "GIT_COMMITTER_EMAIL": "incident-purge@localhost"}
        index_info = "".join(f"100644 {blob}\t{target}\n" for blob, target in entries)
        _run_env(repo, env, "update-index", "--add", "--index-info",
                 input=index_info.encode())
        tree = _run_env(repo, env, "write-tree").strip()
        tip = _run_env(repo, env, "rev-parse", ref).strip()
        commit = _run_env(repo, env, "commit-tree", tree, "-p", tip, "-m",
                          "incident purge: attach notes to the rewritten commits"
                          ).strip()
        _run_env(repo, env, "update-ref", ref, commit, tip)


def _run_env(repo: Path, env: dict[str, str], *args: str,
             input: bytes | None = None) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], input=input, env=env,
                            capture_output=True, check=False)
    if result.returncode != 0:
        raise GitError(f"git {args[0]} failed while moving notes in {repo}: "
                       f"{redact_text(result.stderr.decode('utf-8', 'replace'))}",
                       "Restore from the backup bundle and run the purge again.")
    return result.stdout.decode()
