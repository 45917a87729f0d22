"""``incident guard``: block a Stripe key at commit and push time."""

from __future__ import annotations

import json
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.markup import escape

from incident.allowlist import ALLOWLIST_FILE, AllowlistEntry, add_allowlist_entry
from incident.cli.console import err, out
from incident.cli.options import quiet_option, repo_argument
from incident.errors import ExitCode, UsageError
from incident.guard import (
    GuardFinding,
    GuardResult,
    check_push,
    check_range,
    check_staged,
    install_hooks,
    parse_push_input,
    uninstall_hooks,
)
from incident.guard.hooks import HOOK_NAMES, HookChange
from incident.guard.staged import ensure_work_tree
from incident.journal import operator_identity


@click.group("guard", context_settings={"help_option_names": ["-h", "--help"]})
def guard_group() -> None:
    """Block commits and pushes that add a Stripe secret key.

    Install the hooks once per clone (incident guard install); they run
    `incident guard check`, which scans only what is staged or pushed.
    """


def _hook_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--hook", "hooks", type=click.Choice(HOOK_NAMES), multiple=True,
        help="Only this hook (repeatable); both by default.",
    )(func)


def _print_changes(changes: list[HookChange]) -> None:
    for change in changes:
        line = f"{change.name}: {change.action} ({escape(str(change.path))})"
        # After an uninstall the chained hook has moved back: nothing is "kept".
        if change.chained is not None and change.chained.exists():
            line += f"; original kept as {escape(str(change.chained))}"
        out.print(line)


@guard_group.command("install")
@repo_argument
@_hook_option
def install_cmd(repo: Path, hooks: tuple[str, ...]) -> None:
    """Install the pre-commit and pre-push hooks in REPO.

    An existing hook keeps working: it is renamed to HOOK.incident-chained and
    run first. core.hooksPath is honoured. Undo with: incident guard uninstall.
    """
    changes = install_hooks(repo, hooks or HOOK_NAMES)
    _print_changes(changes)
    err.print(f"The hooks run {escape(sys.executable)} -P -m incident guard check; "
              "reinstall if that Python goes away.")


@guard_group.command("uninstall")
@repo_argument
@_hook_option
def uninstall_cmd(repo: Path, hooks: tuple[str, ...]) -> None:
    """Remove the guard hooks from REPO and restore any hook they chained."""
    _print_changes(uninstall_hooks(repo, hooks or HOOK_NAMES))


def _fix_lines(result: GuardResult, push: bool) -> list[str]:
    blocking = result.blocking
    paths = sorted({f.path for f in blocking if f.path})
    fingerprints = sorted({f.fingerprint for f in blocking})
    lines = ["What to do:"]
    if push:
        lines.append("  1. Remove the key from the commits before pushing: edit the "
                     "file, then `git commit --amend` (last commit) or "
                     "`git rebase -i @{upstream}` (earlier ones).")
    else:
        quoted = " ".join(shlex.quote(p) for p in paths)
        lines.append(f"  1. Unstage and remove the key: git restore --staged {quoted}"
                     f"  (before the first commit: git rm --cached {quoted})")
    lines.append("  2. Read the key from the environment or a secrets manager instead, "
                 'e.g. os.environ["STRIPE_API_KEY"] / process.env.STRIPE_API_KEY.')
    lines.append("  3. Only if it is a test fixture, allowlist it (and commit "
                 f"{ALLOWLIST_FILE}):")
    lines.extend(f'     incident guard allow {fp} --reason "test fixture"'
                 for fp in fingerprints)
    lines.append("  If a live key ever left this machine, treat it as leaked: "
                 "incident respond")
    return lines


def _describe(finding: GuardFinding) -> str:
    where = escape(finding.where)
    if finding.commit and finding.path:
        where += f" (commit {finding.commit[:12]})"
    return (f"  {where}  {finding.redacted}  {finding.mode} {finding.kind}  "
            f"fingerprint {finding.fingerprint}")


def _render_text(result: GuardResult, push: bool, quiet: bool) -> None:
    blocking = result.blocking
    existing = [f for f in result.findings if f.existing and f.allowed is None]
    allowed = [f for f in result.findings if f.allowed is not None]

    if blocking:
        noun = "push" if push else "commit"
        count = len({f.fingerprint for f in blocking})
        out.print(f"Blocked: this {noun} adds {count} Stripe secret "
                  f"key{'s' if count != 1 else ''}.")
        for finding in blocking:
            out.print(_describe(finding))
        out.print("")
        for line in _fix_lines(result, push):
            out.print(escape(line))
    for finding in existing:
        err.print("Warning: already committed before this change (not blocking), "
                  f"still a leak to clean up with incident respond:\n"
                  f"{_describe(finding)}")
    for finding in allowed:
        err.print(f"Allowed by {ALLOWLIST_FILE}: {escape(finding.where)} "
                  f"{finding.redacted} ({escape(finding.allowed or '')})")
    if not blocking and not quiet:
        err.print(f"incident guard: {result.objects} objects in {result.what} "
                  f"checked in {result.seconds:.2f}s; no Stripe secret added.")


@guard_group.command("check")
@repo_argument
@click.option("--pre-push", "pre_push", is_flag=True,
              help="Read git's pre-push lines on stdin and check the pushed range.")
@click.option("--remote", default=None, help="Remote name, for messages.")
@click.option("--from-ref", envvar="PRE_COMMIT_FROM_REF", default=None,
              help="Check FROM_REF..TO_REF (set by the pre-commit framework).")
@click.option("--to-ref", envvar="PRE_COMMIT_TO_REF", default=None,
              help="End of the range to check.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
@quiet_option
@click.pass_context
def check_cmd(ctx: click.Context, repo: Path, pre_push: bool, remote: str | None,
              from_ref: str | None, to_ref: str | None, fmt: str,
              quiet: bool) -> None:
    """Scan what is staged (or being pushed) for Stripe secret keys.

    Exits 1 and names file, line, redacted key and fingerprint when a commit or
    push would add a key; exits 0 otherwise. Keys in .incident-allowlist.yaml
    do not block.
    """
    top = ensure_work_tree(repo)
    if pre_push:
        updates = parse_push_input(sys.stdin.read().splitlines())
        result = check_push(top, updates, remote=remote)
    elif to_ref:
        result = check_range(top, from_ref or "", to_ref)
        pre_push = True
    else:
        result = check_staged(top)

    if fmt == "json":
        out.out(json.dumps(result.to_dict(), indent=2), highlight=False)
    else:
        _render_text(result, pre_push, quiet)
    ctx.exit(ExitCode.FINDINGS if result.blocked else ExitCode.OK)


@guard_group.command("allow")
@click.argument("fingerprint")
@repo_argument
@click.option("--reason", required=True, help="Why this key is harmless (e.g. the "
              "fixture it belongs to).")
def allow_cmd(fingerprint: str, repo: Path, reason: str) -> None:
    """Allowlist a test-fixture key by its FINGERPRINT in REPO.

    Adds an entry to .incident-allowlist.yaml at the repository root; commit
    that file so scan, audit and guard honour it everywhere.
    """
    top = ensure_work_tree(repo)
    if not reason.strip():
        raise UsageError("--reason is empty.", "Say which fixture the key belongs to.")
    entry = AllowlistEntry(
        fingerprint=fingerprint.strip().lower(),
        reason=reason.strip(),
        added_by=operator_identity(top),
        added_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    path = add_allowlist_entry(top, entry)
    out.print(f"Allowed {entry.fingerprint[:12]}… in {escape(str(path))}: "
              f"{escape(entry.reason)}")
    err.print(f"Commit it so every clone honours it: git add {ALLOWLIST_FILE} && "
              "git commit")
