"""Push a rewritten history back: one force-with-lease push per ref, each reported.

One push per ref, not one push for all: a hosting service refuses a protected branch
or a hidden ``refs/pull/*`` ref with a pre-receive hook, which rejects the whole push
it is part of, and the other refs must still go through.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from incident.errors import UsageError
from incident.redact import redact_text
from incident.rewrite.gitcmd import run_git
from incident.rewrite.history import RefChange, RewriteResult

logger = logging.getLogger(__name__)

# Local-only namespaces: never pushed, never deleted on the remote.
_LOCAL_ONLY = ("refs/remotes/", "refs/stash", "refs/original/")


@dataclass(frozen=True)
class PushStep:
    """One ref to update, create or delete on the remote.

    Attributes:
        name: the ref for humans (a key in it redacted).
        action: ``update``, ``create`` or ``delete``.
        new: the rewritten object id (None for delete).
        expect: the value the remote must still hold (``""``: must not exist).
        ref: the exact ref name; never shown.
    """

    name: str
    action: str
    new: str | None
    expect: str
    ref: str = field(repr=False, compare=False)

    @property
    def ref_id(self) -> str:
        """A stable id for the journal that does not reveal the ref name."""
        return hashlib.sha256(self.ref.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PushOutcome:
    """What the remote said about one ref."""

    name: str
    action: str
    ok: bool
    detail: str
    ref_id: str = ""


def is_remote_url(remote: str) -> bool:
    """True when --remote names a URL or path rather than a configured remote."""
    return "/" in remote or ":" in remote


def remote_url(repo: Path, remote: str) -> str:
    """The URL of remote in repo (a URL or path may also be given directly).

    Raises:
        UsageError: there is no such remote.
    """
    if is_remote_url(remote):
        return remote
    result = run_git(repo, "remote", "get-url", remote, check=False)
    if result.returncode != 0:
        raise UsageError(f"{repo} has no remote named {remote!r}",
                         "Pass --remote NAME or --remote URL, or push by hand with "
                         "the commands printed without --push.")
    return result.stdout.decode().strip()


def remote_refs(repo: Path, url: str) -> dict[str, str]:
    """Every ref the remote advertises (name -> id), peeled tag entries dropped."""
    output = run_git(repo, "ls-remote", url).stdout.decode("utf-8", "surrogateescape")
    refs: dict[str, str] = {}
    for line in output.splitlines():
        sha, _, name = line.partition("\t")
        if name.endswith("^{}") or name == "HEAD":
            continue
        refs[name] = sha
    return refs


def plan_push(
    result: RewriteResult, remote: dict[str, str] | None
) -> tuple[list[PushStep], list[PushOutcome]]:
    """Decide which refs to push, and which to leave alone (with the reason).

    Args:
        result: the rewrite, with every ref before and after.
        remote: what the remote advertised before the rewrite, or None when it was
            not asked (commands are then planned against the pre-rewrite values).
    """
    known = set(result.commit_map) | {c.old for c in result.refs if c.old}
    steps: list[PushStep] = []
    skipped: list[PushOutcome] = []
    for change in result.refs:
        if change.ref.startswith(_LOCAL_ONLY) or change.status == "unchanged":
            continue
        step = _plan_one(change, remote, known)
        if isinstance(step, PushOutcome):
            skipped.append(step)
        elif step is not None:
            steps.append(step)
    return steps, skipped


def _plan_one(change: RefChange, remote: dict[str, str] | None,
              known: set[str]) -> PushStep | PushOutcome | None:
    expected = (change.old or "") if remote is None else remote.get(change.ref, "")
    if remote is not None and expected and expected == change.new:
        return None  # already pushed (by an earlier, interrupted run)
    if remote is not None and expected and expected not in known:
        return PushOutcome(change.name, "skip", False,
                           "the remote holds commits this rewrite never saw; fetch "
                           "them and purge again")
    if change.new is None:
        if not expected:
            return None  # gone here, and never on the remote: nothing to delete
        return PushStep(change.name, "delete", None, expected, change.ref)
    if remote is not None and not expected and change.renamed_from is None \
            and change.old is not None:
        return None  # a local-only ref: it was never published
    action = "update" if expected else "create"
    return PushStep(change.name, action, change.new, expected, change.ref)


def push_command(repo: Path, url: str, step: PushStep) -> list[str]:
    """The git push command for one step, lease included."""
    source = step.new or ""
    return ["git", "-C", str(repo), "push", "--porcelain",
            f"--force-with-lease={step.ref}:{step.expect}", url,
            f"{source}:{step.ref}"]


def format_command(repo: Path, url: str, step: PushStep) -> str:
    """A push command for humans (ref names with a key stay redacted)."""
    command = push_command(repo, url, step)
    text = " ".join(shlex.quote(part) for part in command if part != "--porcelain")
    if step.ref == step.name:
        return text
    # NOTE: the ref name holds a key, so the command cannot be printed whole.
    return (text.replace(step.ref, step.name)
            + "  # the ref name holds a key and is shown redacted: use --push")


def push_refs(repo: Path, url: str, steps: list[PushStep],
              record: Callable[[PushStep, PushOutcome], None] | None = None
              ) -> list[PushOutcome]:
    """Push each step on its own and report what the remote said."""
    outcomes = []
    for step in steps:
        result = run_git(repo, *push_command(repo, url, step)[3:], check=False)
        outcome = _outcome(step, result.returncode,
                           result.stdout.decode("utf-8", "replace")
                           + result.stderr.decode("utf-8", "replace"))
        logger.info("push %s: %s", step.name, outcome.detail)
        if record is not None:
            record(step, outcome)
        outcomes.append(outcome)
    return outcomes


def _outcome(step: PushStep, returncode: int, output: str) -> PushOutcome:
    text = redact_text(output).replace(step.ref, step.name)
    if returncode == 0:
        return PushOutcome(step.name, step.action, True, "done", step.ref_id)
    if step.ref.startswith("refs/pull/") or "hidden ref" in text \
            or "deny updating a hidden ref" in text:
        detail = ("refused: pull-request refs belong to the hosting service; "
                  "ask its support to remove them (see the request below)")
    elif "stale info" in text:
        detail = ("refused: the remote ref moved since it was fetched (someone "
                  "pushed); fetch, purge again, then push")
    elif "pre-receive hook declined" in text or "protected" in text.lower() \
            or "hook declined" in text:
        detail = ("refused by the remote (a protected branch or a server hook); "
                  "lift the protection for this push, or ask an admin to push it")
    else:
        lines = [line for line in text.splitlines() if line.strip()]
        detail = "failed: " + (lines[-1] if lines else f"git exited {returncode}")
    return PushOutcome(step.name, step.action, False, detail, step.ref_id)
