"""Run a playbook against a repository, one journaled step at a time.

Every step is recorded before it starts and after it ends. A resumed run skips the
steps recorded as done; a step that was interrupted runs again, and the irreversible
work inside it (a rotation, a rewrite, a push) resumes from its own journal events
instead of happening twice.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from incident.delivery import anchor_target
from incident.detect.rules import KeyKind, Mode
from incident.errors import IncidentError, RefusedError, StripeApiError
from incident.history import Finding, ScanReport, open_repository, scan_repository
from incident.journal import (
    Journal,
    keep_out_of_git,
    operator_identity,
    utc_now,
)
from incident.lock import repository_lock
from incident.playbook import Playbook, Step, load_playbook
from incident.redact import redact_text
from incident.respond.exposure import ref_exposure, tip_departures
from incident.respond.secrets import recorded_fingerprints, recover_findings
from incident.rewrite.gitcmd import git_env, run_git
from incident.rewrite.push import is_remote_url

logger = logging.getLogger(__name__)

STEP = "respond"
FETCH_TIMEOUT_SECONDS = 600
PLAYBOOK_COPY = "playbook.yaml"


@dataclass(frozen=True)
class RespondOptions:
    """What the operator chose; everything but the credentials is journaled.

    Attributes:
        api_key: the operator's Stripe key (STRIPE_API_KEY); never journaled.
        use_leaked_key: authenticate Stripe calls with each leaked key itself.
        api_base: another Stripe base URL (the sandbox).
        deliver: ``--deliver`` targets for the new keys.
        grace: minutes the old keys keep working (None: the playbook's value).
        include_test: also roll test-mode keys (None: the playbook's value).
        in_place: rewrite the repository itself (None: the playbook's value).
        push: run the push step (False: print the push commands instead).
        remote: the remote to push to.
        fetch: fetch every remote before the scan, so refs others pushed are
            scanned too.
        roll_tuning: RollOptions fields for timeouts and retries (tests shorten them).
    """

    api_key: str | None = field(default=None, repr=False)
    use_leaked_key: bool = False
    api_base: str | None = None
    deliver: tuple[str, ...] = ()
    grace: int | None = None
    include_test: bool | None = None
    in_place: bool | None = None
    push: bool = True
    remote: str = "origin"
    fetch: bool = True
    roll_tuning: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("api_key")
        return data

    @classmethod
    def from_record(cls, data: dict[str, Any], api_key: str | None) -> RespondOptions:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["deliver"] = tuple(known.get("deliver", ()))
        return cls(api_key=api_key, **known)


class Ui(Protocol):
    """How the runner talks to the operator (the CLI uses rich; tests are silent)."""

    def step_started(self, step: Step, number: int, total: int) -> None: ...
    def step_finished(self, step: Step, status: str, summary: str) -> None: ...
    def manual_step(
        self, step_id: str, title: str, instructions: list[str]
    ) -> None: ...
    def confirm(self, question: str) -> bool: ...
    def note(self, text: str) -> None: ...
    def progress(
        self, description: str
    ) -> AbstractContextManager[Callable[[int, int], None] | None]: ...


@dataclass
class StepOutcome:
    """What an action reports: a one-line summary, and whether to stop the run."""

    summary: str
    stop: bool = False
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class RespondResult:
    """How the run ended."""

    incident_id: str
    journal: Journal
    status: str  # complete | manual-steps-open | live-keys-not-rolled | incomplete
    open_steps: list[dict[str, Any]] = field(default_factory=list)
    reports: list[Path] = field(default_factory=list)
    stopped_at: str | None = None


class RespondStopped(IncidentError):
    """A step failed or was declined; the journal says where to resume."""

    def __init__(self, message: str, hint: str, exit_code: int) -> None:
        super().__init__(message, hint)
        self.exit_code = exit_code  # type: ignore[assignment]


class Responder:
    """Runs one incident's playbook against one repository."""

    def __init__(self, repo: Path, playbook: Playbook, options: RespondOptions,
                 journal: Journal, ui: Ui, *, yes: bool = False) -> None:
        self.repo = repo
        self.playbook = playbook
        self.options = options
        self.journal = journal
        self.ui = ui
        self.yes = yes
        self.findings: dict[str, Finding] = {}
        self.report: ScanReport | None = None
        self.actions: dict[str, Callable[[Step], StepOutcome]] = {
            "scan": self._scan,
            "liveness": self._liveness,
            "roll": self._roll,
            "purge": self._purge,
            "push": self._push,
            "report": self._report,
        }

    # -- starting and resuming ----------------------------------------------

    @classmethod
    def start(cls, repo: Path, playbook_path: Path | None, options: RespondOptions,
              ui: Ui, *, root: Path | None, incident_id: str | None = None,
              yes: bool = False) -> Responder:
        """Open a new incident for repo and journal how it was started."""
        repository = open_repository(repo)
        playbook = load_playbook(playbook_path)
        # Where `--resume` and `incident roll --incident` look by default.
        default_root = (repository.work_tree or repository.path) / ".incident"
        journal = Journal.create(root or default_root, incident_id)
        # The incident folder will hold secret files: keep it out of `git add`.
        keep_out_of_git(journal.directory.parent)
        journal.actor = _operator(repository.path)
        shutil.copyfile(playbook.source, journal.directory / PLAYBOOK_COPY)
        journal.append(STEP, "started", repo=str(repository.path),
                       playbook=playbook.source, playbook_name=playbook.name,
                       playbook_version=playbook.version,
                       playbook_sha256=playbook.sha256, options=options.to_record())
        return cls(repository.path, playbook, options, journal, ui, yes=yes)

    @classmethod
    def resume(cls, incident_id: str, ui: Ui, *, root: Path | None,
               api_key: str | None, yes: bool = False,
               deliver: tuple[str, ...] = ()) -> Responder:
        """Reopen an incident where it stopped, with the options it started with.

        deliver: new delivery targets replacing the recorded ones (a target that
        could not work must be fixable without starting over); journaled.

        Raises:
            UsageError: no such incident, or it was not started by respond.
        """
        journal = Journal.open(root, incident_id)
        started = journal.find(STEP, "started")
        if not started and not journal.events():
            raise RefusedError(
                f"incident {journal.incident_id} was stopped while it was being "
                "created: nothing was done in it",
                f"Start a new response instead: incident respond REPO (and delete "
                f"{journal.directory}).")
        if not started:
            raise RefusedError(
                f"incident {journal.incident_id} was not started by incident respond",
                "Resume it with the command that started it (incident roll or "
                f"purge --incident {journal.incident_id}).")
        data = started[0].data
        repo = Path(data["repo"])
        journal.actor = _operator(repo)
        playbook = load_playbook(journal.directory / PLAYBOOK_COPY)
        options = RespondOptions.from_record(data.get("options", {}), api_key)
        for change in journal.find(STEP, "options-changed"):
            options = replace(options, deliver=tuple(change.data.get("deliver", ())))
        changed = bool(deliver) and deliver != options.deliver
        if changed:
            journal.append(STEP, "options-changed", deliver=list(deliver))
            options = replace(options, deliver=deliver)
        responder = cls(repo, playbook, options, journal, ui, yes=yes)
        if changed:
            # Keys the old targets could not take wait in emergency files.
            from incident.keys.redeliver import redeliver_waiting_keys

            for line in redeliver_waiting_keys(journal, deliver):
                ui.note(line)
        return responder

    # -- the run --------------------------------------------------------------

    def run(self) -> RespondResult:
        """Run every step not yet done, holding the repository's incident lock.

        Raises:
            RespondStopped: a step failed or the operator declined one.
            RefusedError: another incident command is working on the repository.
        """
        with repository_lock(self.repo, "incident respond, incident "
                             f"{self.journal.incident_id}"):
            return self._run()

    def _run(self) -> RespondResult:
        """Run every step not yet done, in order.

        Raises:
            RespondStopped: a step failed or the operator declined one; the message
                says which and the hint says how to resume.
        """
        done = self.done_steps()
        if done:
            first_open = next((s.id for s in self.playbook.steps if s.id not in done),
                              None)
            self.journal.append(STEP, "resumed", from_step=first_open)
        for step in self.playbook.steps:
            # The report is rewritten on every run, so it tells what came after.
            if step.id in done and step.action != "report":
                self.ui.step_finished(step, "done", "done earlier")
                continue
            if step.manual:
                if self._found_nothing():
                    # No key was ever committed: "restart what used the old key"
                    # has nothing to be about.
                    self.journal.append(step.id, "step-skipped", reason="no secrets",
                                        title=step.title, phase=step.phase,
                                        action=step.action)
                    self.ui.step_finished(step, "skipped", "no Stripe secret found")
                    continue
                self.ui.step_started(step, self.playbook.steps.index(step) + 1,
                                     len(self.playbook.steps))
                self._open_manual(step.id, step.title, step.render_instructions(
                    self.template_context()))
                continue
            if self._run_step(step).stop:
                break
        open_steps = self.open_manual_steps()
        status = "manual-steps-open" if open_steps else "complete"
        if self.live_keys_not_contained():
            # Whatever else is done, a working leaked live key is the emergency.
            status = "live-keys-not-rolled"
        from incident.report.timeline import history_complete

        if not history_complete(self.journal.events()):
            # Keys in what could not be read were neither rolled nor purged.
            status = "incomplete"
        self.journal.append(STEP, "finished", status=status)
        reports = [Path(e.data["path"]) for e in self.journal.find("record",
                                                                    "report-written")]
        return RespondResult(self.journal.incident_id, self.journal, status,
                             open_steps, reports)

    def _found_nothing(self) -> bool:
        return bool(self.journal.find("detect", "scan-done")) and not (
            self._recorded_fingerprints())

    def live_keys_not_contained(self) -> list[str]:
        """Redacted live API keys the journal never saw rotated or revoked."""
        from incident.report.keyrecord import contains_the_key

        contained = {e.data.get("fingerprint") for e in self.journal.events()
                     if contains_the_key(e)}
        return [str(e.data.get("redacted")) for e in self.journal.find(
                    "detect", "finding", mode="live")
                if e.data.get("kind") != "webhook_secret"
                and e.data.get("fingerprint") not in contained]

    def _run_step(self, step: Step) -> StepOutcome:
        base = {"title": step.title, "phase": step.phase, "action": step.action}
        needs_findings = step.action in {"liveness", "roll", "purge", "push"}
        if needs_findings and not self.findings:
            self._load_findings(strict=self._needs_secret_values(step))
            if not self.findings and not self._recorded_fingerprints():
                self.journal.append(step.id, "step-skipped", reason="no secrets",
                                    **base)
                self.ui.step_finished(step, "skipped", "no Stripe secret to act on")
                return StepOutcome("no secrets")
        if step.confirm and not self.yes and not self.ui.confirm(
                self._question(step)):
            self.journal.append(step.id, "step-declined", **base)
            self.journal.append(STEP, "stopped", at_step=step.id, reason="declined")
            raise RespondStopped(
                f"stopped before step {step.id!r}: not confirmed",
                f"Nothing more was changed. Continue later with: "
                f"{self.resume_command()}", 3)
        self.journal.append(step.id, "step-started", **base)
        self.ui.step_started(step, self.playbook.steps.index(step) + 1,
                             len(self.playbook.steps))
        try:
            outcome = self.actions[step.action](step)
        except IncidentError as exc:
            self.journal.append(step.id, "step-failed", error=exc.message,
                                hint=exc.hint, **base)
            self.journal.append(STEP, "stopped", at_step=step.id, reason=exc.message)
            self.ui.step_finished(step, "failed", exc.message)
            raise RespondStopped(
                f"step {step.id!r} failed: {exc.message}",
                (exc.hint + "\n  " if exc.hint else "")
                + f"Then continue where it stopped: {self.resume_command()}"
                + ("" if step.action == "scan" else
                   "  (or, if you finished this step by hand: "
                   + self.journal.command("step", "done", step.id) + ")"),
                int(exc.exit_code)) from exc
        except KeyboardInterrupt:
            self.journal.append(STEP, "stopped", at_step=step.id, reason="interrupted")
            raise
        self.journal.append(step.id, "step-done", summary=outcome.summary,
                            **outcome.details, **base)
        self.ui.step_finished(step, "done", outcome.summary)
        return outcome

    def resume_command(self) -> str:
        """The exact command that continues this incident, from any directory."""
        return (f"incident respond {shlex.quote(str(self.repo))} --resume "
                f"{self.journal.incident_id} --incident-dir "
                f"{shlex.quote(str(self.journal.directory.parent))}")

    def _question(self, step: Step) -> str:
        assert step.confirm is not None
        count = len(self._keys_to_roll(step)) if step.action == "roll" else None
        extra = f" ({count} key(s))" if count is not None else ""
        return step.confirm + extra

    # -- state ----------------------------------------------------------------

    def done_steps(self) -> set[str]:
        """Steps recorded as done, skipped, or closed by hand."""
        done = {e.step for e in self.journal.events()
                if e.event in {"step-done", "step-skipped"}}
        done |= {e.data.get("step_id") for e in self.journal.events()
                 if e.event == "manual-step-done"}
        return {d for d in done if d}

    def open_manual_steps(self) -> list[dict[str, Any]]:
        """Manual steps recorded as pending and not closed, in order."""
        return open_manual_steps(self.journal)

    def template_context(self) -> dict[str, Any]:
        keys = [e.data.get("redacted", "") for e in self.journal.find("detect",
                                                                      "finding")]
        reports = self.journal.find("record", "report-written")
        return {
            "incident": self.journal.incident_id,
            "repo": str(self.repo),
            "remote": self.options.remote,
            "keys": keys or ["the leaked keys"],
            "report": reports[-1].data["path"] if reports else "(not written yet)",
        }

    def _recorded_fingerprints(self) -> list[str]:
        return recorded_fingerprints(self.journal)

    def _load_findings(self, strict: bool) -> None:
        """Read the keys back (values are never journaled) from the repository or
        the purge's backup; strict: every recorded key is needed."""
        fingerprints = self._recorded_fingerprints()
        if fingerprints:
            self.findings = recover_findings(self.repo, fingerprints, self.journal,
                                             strict=strict)

    def _needs_secret_values(self, step: Step) -> bool:
        """Rolling needs the keys; pushing a rewrite already verified does not."""
        if step.action in {"liveness", "roll"}:
            return True
        verified = self.journal.find("purge", "verify-done", clean=True)
        return not verified

    def _open_manual(self, step_id: str, title: str, instructions: list[str]) -> None:
        if not self.journal.find(None, "manual-step-pending", step_id=step_id):
            self.journal.append(step_id, "manual-step-pending",
                                step_id=step_id, title=title,
                                instructions=instructions)
        self.ui.manual_step(step_id, title, instructions)

    def _keys_to_roll(self, step: Step) -> list[Finding]:
        include_test = (self.options.include_test
                        if self.options.include_test is not None
                        else bool(step.params.get("include_test", False)))
        return [f for f in self.findings.values() if f.kind.is_secret
                and (f.mode is not Mode.TEST or include_test)]

    # -- actions --------------------------------------------------------------

    def _scan(self, step: Step) -> StepOutcome:
        repository = open_repository(self.repo)
        if repository.shallow:
            raise RefusedError(
                f"{self.repo} is a shallow clone: the history before its oldest "
                "commit is missing, so keys there can be neither found nor purged",
                f"Fetch the whole history (git -C {shlex.quote(str(self.repo))} "
                "fetch --unshallow), then continue.")
        self._check_purge_can_run()
        if self.options.fetch:
            self._fetch_remotes()
        with self.ui.progress("Reading objects") as advance:
            report = scan_repository(self.repo, progress=advance)
        self.report = report
        self.findings = {}
        for finding in report.findings:
            if not finding.kind.is_secret:
                continue
            self.findings[finding.fingerprint] = finding
            refs = ref_exposure(repository, finding)
            self.journal.append("detect", "finding", **_masked(dict(
                fingerprint=finding.fingerprint, redacted=finding.redacted,
                kind=str(finding.kind), mode=str(finding.mode),
                severity=finding.severity, reachable=finding.reachable,
                first_seen=finding.first_seen.to_dict() if finding.first_seen else None,
                refs=[r.to_dict() for r in refs],
                present_at_tips=finding.present_at_tips,
                pushed=any(r.startswith("refs/remotes/") for r in finding.refs),
                left_tips=[d.to_dict() for d in tip_departures(repository, finding)],
                locations=len(finding.locations),
                location_sample=[loc.to_dict() for loc in finding.locations[:20]],
            )))
        self.journal.append(
            "detect", "scan-done", findings=len(self.findings),
            incomplete=report.incomplete,
            unscanned=_masked([u.to_dict() for u in report.unscanned[:50]]),
            objects=report.stats.objects, scanned_at=report.scanned_at)
        live = sum(f.mode is Mode.LIVE for f in self.findings.values())
        summary = (f"{len(self.findings)} secret(s), {live} live, in "
                   f"{report.stats.objects} objects")
        if report.incomplete:
            summary += "; INCOMPLETE: part of the history could not be read"
            self.ui.note("Part of the history could not be read; keys there are not "
                         f"handled. See: incident scan {self.repo}")
        if not self.findings:
            return StepOutcome(summary + "; nothing to contain or purge")
        return StepOutcome(summary)

    def _refuse_missing_objects(self) -> None:
        """A bundle or rewrite needs every object: say so plainly, with the way
        to get them back, instead of failing inside git."""
        scans = self.journal.find("detect", "scan-done")
        gaps = [u for u in (scans[-1].data.get("unscanned") or [] if scans else [])
                if isinstance(u, dict)
                and u.get("kind") in ("missing-object", "corrupt-object")]
        if not gaps:
            return
        first = gaps[0]
        where = first.get("path") or first.get("object") or "?"
        raise RefusedError(
            f"{len(gaps)} object(s) of {self.repo} are missing or damaged (first: "
            f"{where}), so history cannot be backed up or rewritten; the keys found "
            "are contained if the contain step ran",
            "Get the objects back: fetch from a complete clone or the remote "
            "(git fetch --refetch, or clone again and copy .git/objects), check "
            "with git fsck, then continue.")

    def _check_purge_can_run(self) -> None:
        """Refuse now what would stop the in-place rewrite later: after the keys
        were rotated, a dirty working tree would leave the response halfway."""
        from incident.rewrite.gitcmd import refuse_unsafe_source

        step = next((s for s in self.playbook.steps if s.action == "purge"), None)
        if step is None:
            return
        in_place = (self.options.in_place if self.options.in_place is not None
                    else bool(step.params.get("in_place", True)))
        refuse_unsafe_source(self.repo, in_place=in_place)

    def _fetch_remotes(self) -> None:
        """Fetch every remote (never pruning), so the scan sees what others pushed.

        A stale clone would otherwise miss a branch a colleague pushed with the key
        and call the remote clean after the purge.
        """
        remotes = _remotes(self.repo)
        failed: dict[str, str] = {}
        for remote in remotes:
            reason = _fetch(self.repo, remote)
            if reason is not None:
                failed[remote] = reason
        fetched = [r for r in remotes if r not in failed]
        if fetched:
            self.journal.append("detect", "fetched", remotes=fetched)
        if not failed:
            return
        self.journal.append("detect", "fetch-failed", remotes=sorted(failed),
                            error="; ".join(f"{r}: {why}" for r, why in failed.items()))
        for remote, why in failed.items():
            self.ui.note(f"Could not fetch {remote} ({why}): refs pushed there since "
                         "your last fetch are not scanned. Fix access, then run: git "
                         f"-C {shlex.quote(str(self.repo))} fetch {remote}, and "
                         "respond again.")

    def _liveness(self, step: Step) -> StepOutcome:
        from incident.keys import LeakedKey, Liveness
        from incident.keys.client import StripeKeyService
        from incident.keys.match import pick_key_object

        service = StripeKeyService(self.options.api_base, **_service_tuning(
            self.options.roll_tuning))
        counts: dict[str, int] = {}
        operator = self.options.api_key if not self.options.use_leaked_key else None
        listed: list[dict[str, Any]] | None = None
        for finding in self._keys_to_roll(step):
            if finding.kind is KeyKind.WEBHOOK_SECRET:
                continue
            key = LeakedKey.from_finding(finding)
            key_id = last_used = None
            if operator is not None:
                # Before our own read below touches the key's last_used.
                try:
                    listed = listed if listed is not None else service.list_keys(
                        operator)
                    obj = pick_key_object(key, listed)
                    if isinstance(obj, dict):
                        key_id, last_used = obj.get("id"), obj.get("last_used")
                except StripeApiError as exc:
                    self.ui.note(f"Could not list API keys: {exc.message}")
                    operator = None
            started_at = utc_now()
            liveness = service.check_liveness(key.secret)
            counts[str(liveness)] = counts.get(str(liveness), 0) + 1
            self.journal.append("assess", "liveness-checked",
                                fingerprint=key.fingerprint, redacted=key.redacted,
                                liveness=str(liveness), started_at=started_at,
                                checked_at=utc_now(),
                                key_id=key_id, last_used=last_used)
            if liveness is Liveness.UNKNOWN:
                self.ui.note(f"{key.redacted}: Stripe could not be reached; the roll "
                             "step checks again.")
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        return StepOutcome(summary or "no live-mode secret key to check")

    def _roll(self, step: Step) -> StepOutcome:
        from incident.keys import LeakedKey, RollOptions, RollStatus, roll_keys

        keys = [LeakedKey.from_finding(f) for f in self._keys_to_roll(step)]
        if not keys:
            return StepOutcome("no key to roll (test keys are purged, not rolled)")
        grace = (self.options.grace if self.options.grace is not None
                 else int(step.params.get("grace", 0)))
        # A playbook's relative paths mean the repository's.
        deliver = self.options.deliver or tuple(
            anchor_target(str(d), self.repo.resolve())
            for d in step.params.get("deliver", ()))
        options = RollOptions(api_key=self.options.api_key,
                              use_leaked_key=self.options.use_leaked_key,
                              api_base=self.options.api_base, grace_minutes=grace,
                              deliver=deliver, **self.options.roll_tuning)
        results = roll_keys(keys, options, self.journal)
        by_status: dict[str, int] = {}
        for result in results:
            by_status[str(result.status)] = by_status.get(str(result.status), 0) + 1
            for number, line in enumerate(result.manual_steps, 1):
                logger.debug("manual step %d for %s: %s", number, result.redacted,
                             line)
            if result.emergency_file:
                self.ui.note(f"The new key for {result.redacted} is in "
                             f"{result.emergency_file} (0600): move it where the app "
                             "reads it, then delete the file.")
            for target in result.delivered_to:
                self.ui.note(f"New key for {result.redacted} delivered to {target}.")
            if "still accepted" in result.message:
                self.ui.note(f"WARNING {result.redacted}: Stripe still accepted the "
                             "old key when polling stopped: expire it in the "
                             "Dashboard (Developers > API keys) now.")
        for event in self.journal.find("roll", "manual-step-pending"):
            self.ui.manual_step(event.data["step_id"], event.data.get("title", ""),
                                list(event.data.get("instructions", [])))
        summary = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items()))
        blocked = [r for r in results if r.status in {
            RollStatus.FAILED, RollStatus.NOT_FOUND, RollStatus.AMBIGUOUS}]
        if blocked:
            first = blocked[0]
            raise StripeApiError(
                f"{len(blocked)} key(s) not rolled ({first.redacted}: "
                f"{first.status}: {first.message})",
                "Fix the cause (credentials, network) or roll the key in the Stripe "
                "Dashboard.")
        return StepOutcome(summary)

    def _purge_options(self, step: Step | None, push: bool) -> Any:
        from incident.rewrite import DEFAULT_MARKER, PurgeOptions

        purge_step = step if step is not None and step.action == "purge" else next(
            (s for s in self.playbook.steps if s.action == "purge"), None)
        params = purge_step.params if purge_step else {}
        in_place = (self.options.in_place if self.options.in_place is not None
                    else bool(params.get("in_place", True)))
        return PurgeOptions(
            in_place=in_place, workdir=self.journal.directory,
            replacement=str(params.get("replacement", DEFAULT_MARKER)),
            push=push, remote=self.options.remote,
            # None: the purge reads them back itself (never "no keys at all").
            secrets=self._all_secrets())

    def _all_secrets(self) -> tuple[str, ...] | None:
        recorded = set(self._recorded_fingerprints())
        if recorded - set(self.findings):
            return None
        return tuple(f.secret for f in self.findings.values())

    def _purge(self, step: Step) -> StepOutcome:
        from incident.rewrite import purge_repository

        self._refuse_missing_objects()
        result = purge_repository(self.repo, self._purge_options(step, push=False),
                                  self.journal)
        check = result.verification
        summary = (f"{result.commits_rewritten} of {result.commits_total} commits "
                   f"rewritten, {len(result.refs)} ref(s) changed; verified clean "
                   f"at {check.checked_at if check else '-'}; backup "
                   f"{result.backup} (holds the keys, 0600)")
        for removed in result.removed_files:
            self.ui.note(f"Removed from history: {removed.path} ({removed.reason})")
        if not self._pushing():
            self._record_next_steps(result)
        return StepOutcome(summary, details={
            "backup": str(result.backup), "rewritten": str(result.rewritten),
            "commit_map": str(result.commit_map_path)})

    def _pushing(self) -> bool:
        return self.options.push and any(s.action == "push"
                                         for s in self.playbook.steps)

    def _push(self, step: Step) -> StepOutcome:
        from incident.rewrite import purge_repository

        remote = str(step.params.get("remote", self.options.remote))
        self.options = replace(self.options, remote=remote)
        if not is_remote_url(remote) and not _remotes(self.repo):
            # A clone without remotes has nowhere to push; failing here would
            # leave a finished purge looking like a failed response.
            self.journal.append(step.id, "push-skipped", reason="no remote")
            result = purge_repository(self.repo, self._purge_options(None, False),
                                      self.journal)
            self._record_next_steps(result, local_only=True)
            return StepOutcome(
                "this clone has no remote, so there is nothing to push. If this "
                "history was pushed from another clone, force-push the rewritten "
                f"refs there: git -C {shlex.quote(str(self.repo))} push --force URL "
                "'refs/heads/*' 'refs/tags/*'")
        if not self.options.push:
            result = purge_repository(self.repo, self._purge_options(None, False),
                                      self.journal)
            self._record_next_steps(result)
            return StepOutcome("not pushed (--no-push): the push commands are in the "
                               "open step 'push-by-hand'")
        result = purge_repository(self.repo, self._purge_options(None, True),
                                  self.journal)
        self._record_next_steps(result)
        if not result.push_outcomes and not result.push_commands:
            return StepOutcome("nothing to push: no published ref changed")
        if result.push_commands and not result.push_outcomes:
            return StepOutcome(f"no remote {remote!r}: push by hand (open step "
                               "'push-by-hand')")
        refused = [o for o in result.push_outcomes if not o.ok]
        if refused:
            raise RefusedError(
                f"{len(refused)} ref(s) were not pushed (first: {refused[0].name}: "
                f"{refused[0].detail})",
                "Lift the protection (or fix the cause) on the remote; the resumed "
                "push sends only the refs still missing.")
        self._other_remotes(remote)
        return StepOutcome(f"{len(result.push_outcomes)} ref(s) pushed to "
                           f"{result.remote}")

    def _other_remotes(self, pushed_to: str) -> None:
        """Every other remote whose branches carried a key still serves it."""
        holding: set[str] = set()
        for event in self.journal.find("detect", "finding"):
            for ref in event.data.get("refs") or []:
                name = str(ref.get("name", "")) if isinstance(ref, dict) else str(ref)
                parts = name.split("/")
                if len(parts) > 3 and parts[:2] == ["refs", "remotes"]:
                    holding.add(parts[2])
        from incident.rewrite.push import remote_url

        configured = _remotes(self.repo)
        for remote in sorted(holding - {pushed_to}):
            if remote not in configured:
                continue
            shown = redact_text(remote_url(self.repo, remote))
            if any(e.data.get("remote") == shown and not e.data.get("refused")
                   for e in self.journal.find("purge", "push-done")):
                continue  # already pushed there (incident purge --remote)
            command = self.journal.command(
                "purge", shlex.quote(str(self.repo)), "--push", "--remote",
                shlex.quote(remote))
            self._open_manual(
                push_step_id(remote),
                f"Remote {remote} still serves the old history",
                [f"The keys reached {remote} too, and only {pushed_to} was pushed. "
                 f"Push the rewritten history there as well: {command}",
                 "Then ask that host, too, to drop cached old commits (the support "
                 "request in the incident folder applies)."])

    def _record_next_steps(self, result: Any, local_only: bool = False) -> None:
        """Journal what no rewrite reaches as open manual steps.

        The purge's own list is written for a stand-alone purge; here the playbook
        already rolls the keys and prints the push commands, so those two go.
        local_only: the clone has no remote, so nothing about a host applies.
        """
        support = None
        if result.support_request and not local_only:
            support = self.journal.directory / "support-request.txt"
            support.write_text(result.support_request + "\n")
        if result.push_commands and not local_only:
            self._open_manual("push-by-hand", "Push the rewritten history",
                              list(result.push_commands))
        for item in result.next_steps:
            if item.title in _COVERED_BY_PLAYBOOK:
                continue
            step_id, title = _NEXT_STEP_IDS.get(
                item.title, ("purge-" + _slug(item.title), item.title))
            if local_only and step_id in _ABOUT_THE_HOST:
                continue
            instructions = [item.action]
            if support is not None and "support request" in item.action:
                instructions.append(f"The request, ready to send: {support}")
            self._open_manual(step_id, title, instructions)

    def _report(self, step: Step) -> StepOutcome:
        from incident.report.files import write_reports

        formats = [str(f) for f in step.params.get("formats", ["markdown"])]
        paths = write_reports(self.journal, formats)
        return StepOutcome("report: " + ", ".join(str(p) for p in paths))


def open_manual_steps(journal: Journal) -> list[dict[str, Any]]:
    """Manual steps recorded as pending and not closed, in the order they opened."""
    closed = {e.data.get("step_id") for e in journal.find(None, "manual-step-done")}
    pending: dict[str, dict[str, Any]] = {}
    for event in journal.find(None, "manual-step-pending"):
        step_id = event.data.get("step_id")
        if step_id and step_id not in closed:
            pending[step_id] = {"time": event.time, **event.data}
    return list(pending.values())


def _operator(repo: Path) -> str:
    return operator_identity(repo)


def _service_tuning(tuning: dict[str, Any]) -> dict[str, Any]:
    names = {"max_network_retries", "retry_seconds", "request_timeout"}
    return {k: v for k, v in tuning.items() if k in names}


# Purge next steps the playbook's own steps already do.
_COVERED_BY_PLAYBOOK = {"Roll the keys", "Push the rewritten history"}
# Stable ids for the steps an operator is most likely to close by name.
_NEXT_STEP_IDS = {
    "Pull-request refs and caches": (
        "notify-host",
        "Ask the hosting service to drop pull-request refs and cached old commits",
    ),
    "Other clones": ("reclone", "Make every clone drop the old history"),
    "Delete the backup when done": ("delete-backup", "Delete the backup when done"),
}
# Steps that only make sense when the history was pushed somewhere.
_ABOUT_THE_HOST = {"notify-host", "purge-forks", "purge-old-objects-on-the-remote",
                   "purge-ci-caches-artifacts-and-mirrors"}


def _masked(value: Any) -> Any:
    """value with every key-shaped text redacted: ref names, paths and tag names
    come from the repository, and a key can hide in any of them."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


def push_step_id(remote: str) -> str:
    """The manual step that asks for the rewritten history to reach remote."""
    return f"push-to-{_slug(remote)}"


def _slug(text: str) -> str:
    words = "".join(c.lower() if c.isalnum() else " " for c in text).split()
    return "-".join(words[:6]) or "step"


def _fetch(repo: Path, remote: str) -> str | None:
    """Fetch one remote's branches and tags without pruning; why it failed, or None."""
    try:
        result = subprocess.run(
            ["git", "-C", str(repo), "fetch", "--tags", "--no-prune", "--quiet",
             remote], capture_output=True, text=True, check=False,
            timeout=FETCH_TIMEOUT_SECONDS,
            env=git_env())
    except subprocess.TimeoutExpired:
        return f"no answer in {FETCH_TIMEOUT_SECONDS} s"
    if result.returncode == 0:
        return None
    lines = result.stderr.strip().splitlines()
    return redact_text(lines[-1] if lines else f"exit {result.returncode}")


def _remotes(repo: Path) -> list[str]:
    return run_git(repo, "remote", check=False).stdout.decode(
        "utf-8", "surrogateescape").split()
