"""``incident purge``: rewrite history without the leaked keys, verify, push."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from incident.cli import finish
from incident.cli.console import err, out
from incident.cli.options import (
    dry_run_option,
    refuse_credentials_in_remote,
    repo_argument,
    yes_option,
)
from incident.errors import ExitCode, UsageError
from incident.journal import Journal, operator_identity
from incident.redact import short_fingerprint
from incident.rewrite import (
    DEFAULT_MARKER,
    PurgeOptions,
    PurgeResult,
    PurgeVerificationError,
    purge_repository,
)


@click.command("purge", context_settings={"help_option_names": ["-h", "--help"]})
@repo_argument
@click.option("--in-place", is_flag=True,
              help="Rewrite REPO itself (after the backup) instead of a fresh mirror.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the backup and the rewritten mirror go.")
@click.option("--replacement", default=DEFAULT_MARKER, show_default=True,
              help="Text that replaces each key.")
@click.option("--push", is_flag=True,
              help="Force-push the rewritten refs (with a lease) and delete removed "
              "ones.")
@click.option("--remote", default="origin", show_default=True,
              help="Remote name or URL to push to.")
@click.option("--incident-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Incident directory to journal this purge in (created if "
              "needed); with --incident, the folder that holds incidents.")
@click.option("--incident", "incident_id",
              help="Journal into this existing incident (under ./.incident/ or "
              "--incident-dir); an earlier purge recorded there is resumed.")
@dry_run_option
@yes_option
def purge_cmd(repo: Path, in_place: bool, workdir: Path | None, replacement: str,
              push: bool, remote: str, incident_dir: Path | None,
              incident_id: str | None, dry_run: bool, yes: bool) -> None:
    """Rewrite REPO's whole history without the leaked Stripe keys.

    Scans REPO for the exact key values, backs everything up to a git bundle, rewrites
    a fresh mirror (or REPO with --in-place) replacing every key in files, messages
    and ref names (also UTF-16, base64, URL-encoded and JSON-escaped), prunes the old
    objects and verifies that no form of any key is left. Pushes only with --push.
    Exit 0: clean; 1: a key remains (nothing pushed), or --dry-run found keys to
    purge; 3: refused; 5: git failed.
    """
    if "\n" in replacement or not replacement:
        raise UsageError("--replacement must be one non-empty line",
                         f"Use the default: --replacement '{DEFAULT_MARKER}'")
    journal = _journal(incident_dir, incident_id)
    if journal is not None:
        journal.actor = operator_identity(repo)  # the report says who pushed
    refuse_credentials_in_remote(remote)
    options = PurgeOptions(in_place=in_place, workdir=workdir, replacement=replacement,
                           dry_run=dry_run, push=push, remote=remote)
    if not dry_run and (in_place or push) and not yes:
        what = "rewrite the history of " + str(repo.resolve()) if in_place else \
            "force-push a rewritten history to " + remote
        click.confirm(f"This will {what}. A backup is made first. Go on?",
                      abort=True, err=True)
    if not dry_run:
        err.print("Scanning, backing up and rewriting; this reads every object twice.")
    try:
        result = purge_repository(repo, options, journal)
    except PurgeVerificationError as exc:
        render(exc.result)
        raise
    render(result)
    failed = [o for o in result.push_outcomes if not o.ok]
    if failed:
        err.print(f"{len(failed)} ref(s) were not pushed; see above.")
        finish(ExitCode.GIT)
    if push and journal is not None and result.push_outcomes:
        _close_push_step(journal, remote)
    # Like scan: a dry run that finds keys to purge is not a clean bill.
    finish(ExitCode.FINDINGS if dry_run and result.keys else ExitCode.OK)


def _close_push_step(journal: Journal, remote: str) -> None:
    """respond opened a step asking for exactly this push: it is done now."""
    from incident.respond.runner import open_manual_steps, push_step_id

    step_id = push_step_id(remote)
    if any(s.get("step_id") == step_id for s in open_manual_steps(journal)):
        journal.append(step_id, "manual-step-done", step_id=step_id,
                       note=f"pushed by incident purge --push --remote {remote}")
        err.print(f"Closed step {escape(step_id)} of incident "
                  f"{escape(journal.incident_id)}.")


def _journal(incident_dir: Path | None, incident_id: str | None) -> Journal | None:
    if incident_id is not None:
        return Journal.open(incident_dir, incident_id)
    if incident_dir is None:
        return None
    if (incident_dir / "journal.jsonl").is_file():
        return Journal.open(None, str(incident_dir))
    return Journal.create(incident_dir.resolve().parent, incident_dir.name)


def render(result: PurgeResult) -> None:
    """Print the purge report on stdout (no key value, ever)."""
    if not result.keys:
        out.print(f"No Stripe secret keys found in {escape(str(result.repository))}; "
                  "nothing to purge.")
        return
    keys = ", ".join(f"{k.redacted} ({short_fingerprint(k.fingerprint)})"
                     for k in result.keys)
    verb = "Would purge" if result.dry_run else "Purged"
    out.print(f"{verb} {len(result.keys)} key(s) from "
              f"{escape(str(result.repository))}: {keys}")
    if result.resumed:
        out.print("Resumed from the journal: backup, rewrite and verification were "
                  "already done.")
    _render_counts(result)
    if not result.dry_run and result.commits_rewritten == 0 and result.keys:
        out.print("No commit held a key: the keys were only in unreachable objects "
                  "(old reflog entries, dangling blobs), which the cleanup pruned.")
    if result.dry_run:
        out.print("Dry run: nothing was changed. Run without --dry-run to purge.")
        return
    _render_locations(result)
    _render_verification(result)
    _render_push(result)
    _render_next_steps(result)


def _render_counts(result: PurgeResult) -> None:
    forms = ", ".join(sorted(result.forms)) or "-"
    out.print(f"Commits:    {result.commits_rewritten} of {result.commits_total} "
              "rewritten")
    out.print(f"Blobs:      {result.blobs_changed} changed (forms: {forms})")
    out.print(f"Refs:       {len(result.refs)} changed")
    for ref in result.refs:
        extra = f" (renamed from {ref.renamed_from})" if ref.renamed_from else ""
        out.print(f"  {ref.status:<9} {escape(ref.name)}{escape(extra)}")
    if result.first_changed_commits:
        out.print("First changed commits: " + " ".join(result.first_changed_commits))
    for removed in result.removed_files:
        out.print(f"Removed from history: {escape(removed.path)} "
                  f"(commit {removed.commit[:12]}: {removed.reason})")
    if result.signatures_removed:
        count = len(result.signatures_removed)
        out.print(f"Signatures removed by the rewrite ({count}): "
                  + " ".join(result.signatures_removed[:10]))
    if result.notes_moved:
        out.print(f"Notes moved onto rewritten commits: {result.notes_moved}")
    for path in [*result.submodules, *result.lfs_pointers]:
        out.print(f"Left untouched (submodule or LFS pointer): {escape(path)}")


def _render_locations(result: PurgeResult) -> None:
    out.print(f"Backup:     {escape(str(result.backup))} (mode 0600)")
    out.print("            It holds the keys. Delete it (shred -u) once the push is "
              "done, the keys are rolled and everyone has re-cloned; until then keep "
              "it: it is the only way back.")
    out.print(f"Rewritten:  {escape(str(result.rewritten))}")
    out.print(f"Commit map: {escape(str(result.commit_map_path))} (old -> new)")


def _render_verification(result: PurgeResult) -> None:
    check = result.verification
    if check is None:
        return
    if check.clean:
        out.print(f"Verified clean at {check.checked_at}: every object "
                  f"({check.objects_scanned}) scanned, and no form of any key found.")
        return
    out.print("NOT CLEAN: a purged key is still stored:")
    for remnant in check.remnants:
        out.print(f"  {escape(remnant.describe())}")
    if check.incomplete:
        out.print("  the verification scan could not read every object")


def _render_push(result: PurgeResult) -> None:
    if result.verification is not None and not result.verification.clean:
        return
    if result.push_outcomes:
        out.print("Push:")
        for outcome in result.push_outcomes:
            mark = "ok" if outcome.ok else "NOT PUSHED"
            out.print(f"  {mark:<10} {outcome.action:<6} {escape(outcome.name)}: "
                      f"{escape(outcome.detail)}")
    elif result.push_commands:
        out.print("To push (each ref on its own, with a lease on the old value):")
        for command in result.push_commands:
            out.print(f"  {escape(command)}")
    else:
        out.print("Push: nothing to push (no published ref changed).")


def _render_next_steps(result: PurgeResult) -> None:
    if result.next_steps:
        out.print("Next steps (what no rewrite can reach):")
        for number, step in enumerate(result.next_steps, start=1):
            out.print(f"  {number}. {escape(step.title)}: {escape(step.action)}")
    if result.support_request:
        out.print("Request for the hosting service's support (ready to send):")
        out.print(escape(result.support_request))
