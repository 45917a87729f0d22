"""Install and remove the guard's git hooks without losing anyone else's.

An existing hook is renamed to ``<hook>.incident-chained`` (the rename keeps its
bytes, mode and symlink-ness) and our hook runs it first, with the same arguments
and the same stdin, and stops with its exit code if it fails. ``uninstall`` renames
it back, so the original is restored byte for byte.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from incident.errors import RefusedError
from incident.fsutil import write_atomic
from incident.guard.gitio import run_git
from incident.guard.staged import ensure_work_tree

logger = logging.getLogger(__name__)

HOOK_NAMES = ("pre-commit", "pre-push")
MARKER = "# incident-guard hook, v1"
CHAIN_SUFFIX = ".incident-chained"


class HookAction(StrEnum):
    """What install or uninstall did to one hook."""

    INSTALLED = "installed"
    CHAINED = "installed, chaining the existing hook"
    UPDATED = "updated"
    REMOVED = "removed"
    RESTORED = "removed, original hook restored"
    NOT_INSTALLED = "not installed"
    FOREIGN = "left alone: not an incident hook"


@dataclass(frozen=True)
class HookChange:
    """One hook file and what happened to it."""

    name: str
    path: Path
    action: HookAction
    chained: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "hook": self.name,
            "path": str(self.path),
            "action": str(self.action),
            "chained": str(self.chained) if self.chained else None,
        }


def hooks_directory(repo: Path) -> Path:
    """The folder git runs hooks from, honouring core.hooksPath."""
    top = ensure_work_tree(repo)
    raw = run_git(top, "rev-parse", "--git-path", "hooks").decode().strip()
    path = Path(raw)
    return path if path.is_absolute() else top / path


def is_guard_hook(path: Path) -> bool:
    """True when path is a hook written by ``incident guard install``."""
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as handle:
        return MARKER.encode() in handle.read(4096)


def render_hook(name: str, python: str | None = None) -> str:
    """The shell script for hook name, calling the Python that installed it."""
    interpreter = shlex.quote(python or sys.executable)
    chained = f'"$(dirname "$0")/{name}{CHAIN_SUFFIX}"'
    # Fail closed when the installing Python is gone (a deleted venv): a guard
    # that silently stops guarding is worse than one that asks to be reinstalled.
    # -P keeps the repository's own folders off sys.path.
    preamble = f"""python={interpreter}
if [ ! -x "$python" ]; then
    echo "incident guard: $python is gone; run: incident guard install" >&2
    echo "  (or skip the check once with --no-verify)" >&2
    exit 1
fi"""
    if name == "pre-push":
        # git writes the pushed refs on stdin once; both hooks must read them.
        return f"""#!/bin/sh
{MARKER}
# Blocks a push that adds a Stripe secret key. Remove: incident guard uninstall
{preamble}
input="$(mktemp)" || exit 1
trap 'rm -f "$input"' EXIT
cat > "$input"
chained={chained}
if [ -x "$chained" ]; then
    "$chained" "$@" < "$input" || exit $?
fi
"$python" -P -m incident guard check --pre-push --remote "$1" < "$input"
"""
    return f"""#!/bin/sh
{MARKER}
# Blocks a commit that adds a Stripe secret key. Remove: incident guard uninstall
{preamble}
chained={chained}
if [ -x "$chained" ]; then
    "$chained" "$@" || exit $?
fi
exec "$python" -P -m incident guard check
"""


def install_hooks(repo: Path, names: tuple[str, ...] = HOOK_NAMES,
                  python: str | None = None) -> list[HookChange]:
    """Install the guard hooks, chaining any hook already there.

    Raises:
        RefusedError: a chained copy already exists beside a hook that is not
            ours; nothing was changed for that hook.
    """
    directory = hooks_directory(repo)
    directory.mkdir(parents=True, exist_ok=True)
    changes: list[HookChange] = []
    for name in names:
        hook = directory / name
        chained = directory / f"{name}{CHAIN_SUFFIX}"
        script = render_hook(name, python).encode()
        if is_guard_hook(hook):
            write_atomic(hook, script, mode=0o755)
            changes.append(HookChange(name, hook, HookAction.UPDATED,
                                      chained if os.path.lexists(chained) else None))
            continue
        if os.path.lexists(hook):
            if os.path.lexists(chained):
                raise RefusedError(
                    f"{hook} exists and so does {chained}; installing would "
                    "overwrite one of them.",
                    f"Move one of them aside, then run: incident guard install {repo}",
                )
            os.rename(hook, chained)
            logger.info("renamed %s to %s", hook, chained)
            write_atomic(hook, script, mode=0o755)
            changes.append(HookChange(name, hook, HookAction.CHAINED, chained))
            continue
        write_atomic(hook, script, mode=0o755)
        changes.append(HookChange(name, hook, HookAction.INSTALLED))
    return changes


def uninstall_hooks(repo: Path,
                    names: tuple[str, ...] = HOOK_NAMES) -> list[HookChange]:
    """Remove the guard hooks and put any chained original back in place."""
    directory = hooks_directory(repo)
    changes: list[HookChange] = []
    for name in names:
        hook = directory / name
        chained = directory / f"{name}{CHAIN_SUFFIX}"
        if not is_guard_hook(hook):
            action = HookAction.FOREIGN if os.path.lexists(hook) else (
                HookAction.NOT_INSTALLED)
            changes.append(HookChange(name, hook, action))
            continue
        if os.path.lexists(chained):
            os.replace(chained, hook)
            changes.append(HookChange(name, hook, HookAction.RESTORED, chained))
        else:
            hook.unlink()
            changes.append(HookChange(name, hook, HookAction.REMOVED))
    return changes
