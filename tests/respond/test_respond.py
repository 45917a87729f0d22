"""`incident respond` end to end against the sandbox, on real repositories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from incident.history import scan_repository
from incident.journal import Journal
from incident.redact import fingerprint
from incident.sandbox import derive_key_id
from tests.cli.helpers import invoke
from tests.respond.conftest import World, git, respond


def new_secret_for(world: World, leaked: str) -> str:
    """The value the sandbox minted when it rotated leaked."""
    rotations = world.sandbox.state.rotations_of(derive_key_id(leaked))
    assert len(rotations) == 1
    return world.sandbox.state.keys[rotations[0].new_key_id].secret


def assert_nothing_holds(world: World, *secrets: str) -> None:
    """No journal, report or other file of the incident holds a secret value,
    except the backup bundle, which must (it is the way back)."""
    directory = world.only_incident()
    for path in directory.iterdir():
        if path.suffix == ".bundle":
            continue
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{path.name} holds a secret"


def test_respond_contains_eradicates_and_records(world: World) -> None:
    before = {f.fingerprint: f for f in scan_repository(world.repo).findings}

    output = respond(world)

    # Eradicated: the repository and the remote's refs hold no key.
    assert scan_repository(world.repo).clean
    log = git(world.origin, "log", "--all", "-p")
    for secret in world.secrets:
        assert secret not in log and secret not in output
    # Contained: each live key rotated exactly once, its new key delivered.
    new_secrets = []
    for leaked in world.live_api_keys:
        assert world.rotations(leaked) == 1
        new = new_secret_for(world, leaked)
        new_secrets.append(new)
        delivered = world.new_keys / f"{fingerprint(leaked)[:12]}.key"
        assert delivered.read_text().strip() == new
        assert delivered.stat().st_mode & 0o777 == 0o600
    # Recorded: the report names every key with its first commit and exposure.
    directory = world.only_incident()
    report = json.loads((directory / "report.json").read_text())
    keys = {k["fingerprint"]: k for k in report["keys"]}
    assert set(keys) == set(before)
    for fp, finding in before.items():
        assert finding.first_seen is not None
        assert keys[fp]["introduced"]["commit"] == finding.first_seen.sha
    for leaked in world.live_api_keys:
        entry = keys[fingerprint(leaked)]
        first = before[fingerprint(leaked)].first_seen
        assert first is not None
        assert entry["exposure"]["start"] == first.committer_date
        assert entry["exposure"]["end"] is not None
    assert (directory / "report.md").exists() and (directory / "report.html").exists()
    # The sample's test key is purged, not rolled, and does not hold containment
    # open; only the webhook secret, whose roll is a manual step, still does.
    test_keys = [s for s in world.secrets if "_test_" in s]
    webhooks = [s for s in world.secrets if s.startswith("whsec_")]
    assert test_keys and webhooks
    summary = report["summary"]
    assert len(summary["test_keys_not_rolled"]) == len(test_keys)
    assert len(summary["still_exposed"]) == len(webhooks)
    assert summary["still_exposed"][0].startswith("whsec_")
    # Our own liveness check is never reported as someone using the key.
    assert report["summary"]["used_after_leak"] == []
    assert_nothing_holds(world, *world.secrets, *new_secrets, world.operator_key)
    assert "incident step done" in output


def test_respond_every_hiding_place(story_world: World) -> None:
    """Encodings, archives, messages, notes, stash and a key in a branch name."""
    respond(story_world)

    assert scan_repository(story_world.repo).clean
    for leaked in story_world.live_api_keys:
        assert story_world.rotations(leaked) == 1
    refs = git(story_world.origin, "for-each-ref", "--format=%(refname)")
    for secret in story_world.secrets:
        assert secret not in refs
    assert_nothing_holds(story_world, *story_world.secrets)


def test_respond_dry_run_changes_nothing(world: World) -> None:
    head = git(world.repo, "rev-parse", "HEAD")
    result = invoke(*world.respond_args("--dry-run"), env=world.env(), exit_code=1)

    assert "Plan:" in result.stdout and "contain" in result.stdout
    assert git(world.repo, "rev-parse", "HEAD") == head
    assert not world.incidents.exists()
    assert all(world.rotations(k) == 0 for k in world.live_api_keys)


def test_respond_declined_step_stops_and_resumes(world: World) -> None:
    """Saying no before the rotation stops there; --resume continues from it."""
    args = [a for a in world.respond_args() if a != "--yes"]
    result = invoke(*args, env=world.env(), input="n\n", exit_code=3)
    assert all(world.rotations(k) == 0 for k in world.live_api_keys)
    incident = world.only_incident().name
    # The way back works from any directory: it names the repo and the folder.
    assert (f"incident respond {world.repo} --resume {incident} --incident-dir "
            f"{world.incidents}") in " ".join(result.stderr.split())

    invoke("respond", "--resume", incident, "--incident-dir", str(world.incidents),
           "--yes", env=world.env(), exit_code=0)

    assert all(world.rotations(k) == 1 for k in world.live_api_keys)
    assert scan_repository(world.repo).clean
    journal = Journal.open(world.incidents, incident)
    assert len(journal.find("detect", "scan-done")) == 1


def test_respond_failed_roll_stops_before_purge(world: World) -> None:
    """A rejected operator key stops the response before history is rewritten."""
    env = {**world.env(), "STRIPE_API_KEY": "sk_" + "live_" + "x" * 30 + "unknown1"}
    head = git(world.repo, "rev-parse", "HEAD")
    result = invoke(*world.respond_args(), env=env)

    assert result.exit_code in (3, 4)
    assert "step 'contain' failed" in result.stderr
    assert (f"incident respond {world.repo} --resume "
            f"{world.only_incident().name}") in " ".join(result.stderr.split())
    assert git(world.repo, "rev-parse", "HEAD") == head

    invoke("respond", "--resume", world.only_incident().name, "--incident-dir",
           str(world.incidents), "--yes", env=world.env(), exit_code=0)
    assert all(world.rotations(k) == 1 for k in world.live_api_keys)


def test_respond_without_keys_completes(tmp_path: Path) -> None:
    repo = tmp_path / "clean"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.txt").write_text("nothing here\n")
    git(repo, "add", "a.txt")
    git(repo, "-c", "user.name=A", "-c", "user.email=a@x", "commit", "-q", "-m", "a")

    result = invoke("respond", str(repo), "--yes", exit_code=0)

    assert "0 secret(s)" in result.stderr
    [incident] = list((repo / ".incident").iterdir())
    journal = Journal.open(repo / ".incident", incident.name)
    assert journal.find("contain", "step-skipped")
    assert not journal.find(None, "manual-step-pending")  # nothing to restart
    assert "/.incident/" in (repo / ".git" / "info" / "exclude").read_text()


def test_step_done_closes_manual_steps(world: World) -> None:
    respond(world)
    incident = world.only_incident().name
    common = ["--incident", incident, "--incident-dir", str(world.incidents)]

    listed = invoke("step", "list", *common, exit_code=1).stdout
    assert "redeploy" in listed and "notify-host" in listed

    invoke("step", "done", "redeploy", *common, "--note", "rolled out v2",
           exit_code=0)
    assert "redeploy" not in invoke("step", "list", *common).stdout
    missing = invoke("step", "done", "no-such-step", *common, exit_code=2)
    assert "no open step" in missing.stderr
    again = invoke("step", "done", "redeploy", *common, exit_code=0)
    assert "already closed" in again.stdout
    # The backup holds the keys: its step closes only once it is gone.
    kept = invoke("step", "done", "delete-backup", *common, exit_code=2)
    assert "still exists" in kept.stderr and "shred -u" in kept.stderr
    for bundle in world.only_incident().glob("*.bundle"):
        bundle.unlink()
    invoke("step", "done", "delete-backup", *common, exit_code=0)

    journal = Journal.open(world.incidents, incident)
    [done] = journal.find("redeploy", "manual-step-done")  # closed once, not twice
    assert done.data["note"] == "rolled out v2" and done.actor


def test_respond_refuses_a_bad_playbook(world: World, tmp_path: Path) -> None:
    playbook = tmp_path / "bad.yaml"
    playbook.write_text("format: 1\nname: x\nsteps:\n"
                        "  - {id: roll, phase: contain, title: t, action: roll}\n")
    result = invoke(*world.respond_args("--playbook", str(playbook)),
                    env=world.env(), exit_code=2)
    assert "needs a scan step before it" in result.stderr
    assert not world.incidents.exists()


def test_respond_custom_playbook_without_push(world: World, tmp_path: Path) -> None:
    """A playbook can drop steps: no push, so the remote keeps the old history."""
    playbook = tmp_path / "short.yaml"
    playbook.write_text(
        "format: 1\nname: short\nsteps:\n"
        "  - {id: detect, phase: detect, title: Scan, action: scan}\n"
        "  - {id: contain, phase: contain, title: Roll, action: roll}\n"
        "  - {id: eradicate, phase: eradicate, title: Purge, action: purge}\n"
        "  - id: tell\n    phase: recover\n    title: Tell the team\n"
        "    action: manual\n    instructions: ['Incident {{ incident }} on "
        "{{ remote }}']\n")
    respond(world, "--playbook", str(playbook))

    assert scan_repository(world.repo).clean
    assert not scan_repository(world.origin).clean
    journal = Journal(world.only_incident())
    [tell] = journal.find("tell", "manual-step-pending")
    assert tell.data["instructions"] == [f"Incident {journal.incident_id} on origin"]
    # No push step: the push is left to the operator, with the exact commands.
    [push] = journal.find(None, "manual-step-pending", step_id="push-by-hand")
    assert all("--force-with-lease" in line for line in push.data["instructions"])


def test_roll_after_purge_reads_keys_back_from_the_backup(
    world: World, tmp_path: Path
) -> None:
    """A response that purged before rolling: the keys are gone from the repo, and
    `incident roll --incident ID` still finds and rotates every one of them."""
    playbook = tmp_path / "purge-only.yaml"
    playbook.write_text(
        "format: 1\nname: purge-only\nsteps:\n"
        "  - {id: detect, phase: detect, title: Scan, action: scan}\n"
        "  - {id: eradicate, phase: eradicate, title: Purge, action: purge}\n")
    output = respond(world, "--playbook", str(playbook), exit_code=1)
    assert scan_repository(world.repo).clean
    incident_id = world.only_incident().name
    # Live keys left working are the emergency: the run says so and how to roll.
    assert "live-keys-not-rolled" in output
    assert f"incident roll {world.repo} --incident {incident_id}" in " ".join(
        output.split())

    # No --deliver: the incident's own targets (from respond) are used again.
    result = invoke("roll", str(world.repo), "--yes", "--incident", incident_id,
                    "--incident-dir", str(world.incidents), env=world.env(),
                    exit_code=None)

    for leaked in world.live_api_keys:
        assert world.rotations(leaked) == 1
        delivered = world.new_keys / f"{fingerprint(leaked)[:12]}.key"
        assert delivered.read_text().strip() == new_secret_for(world, leaked)
    assert "No live Stripe secret" not in result.stderr
    assert "Delivering as this incident recorded" in result.stderr


def test_respond_on_a_clone_without_remotes_finishes(tmp_path: Path) -> None:
    """Nowhere to push is not a failure: the push step says so and the run ends."""
    from incident.sample import build_sample_repo
    from incident.sandbox import start_sandbox

    sample = build_sample_repo(tmp_path / "payments")
    api_keys = [v for v in sample.secrets.values() if not v.startswith("whsec_")]
    with start_sandbox(api_keys) as sandbox:
        env = {"STRIPE_API_KEY": sandbox.add_operator_key("live"),
               "INCIDENT_STRIPE_API_BASE": sandbox.url}
        result = invoke("respond", str(sample.path), "--yes", "--deliver",
                        f"file:{tmp_path}/new/{{fingerprint}}.key", env=env,
                        exit_code=0)

    assert "has no remote, so there is nothing to push" in " ".join(
        result.stderr.split())
    assert scan_repository(sample.path).clean
    [report] = sample.path.glob(".incident/*/report.json")
    steps = json.loads(report.read_text())["summary"]["next_steps"]
    assert not any("Push the rewritten history" in s for s in steps)
    # The backup still holds the keys: its deletion stays an open step.
    opened = {e.data["step_id"] for e in Journal(report.parent).find(
        None, "manual-step-pending")}
    assert "delete-backup" in opened and "notify-host" not in opened


def test_respond_refuses_a_shallow_clone_before_touching_anything(
    world: World, tmp_path: Path
) -> None:
    """A shallow clone hides history: refuse, roll nothing, say how to go on."""
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{world.origin}",
        str(shallow))

    result = invoke("respond", str(shallow), "--yes", "--incident-dir",
                    str(world.incidents), env=world.env(), exit_code=3)

    assert "shallow clone" in result.stderr and "--unshallow" in result.stderr
    assert all(world.rotations(k) == 0 for k in world.live_api_keys)
    dry = invoke("respond", str(shallow), "--dry-run", env=world.env())
    assert dry.exit_code == 1 and "INCOMPLETE" in dry.stdout


def test_respond_fetches_what_others_pushed(world: World, tmp_path: Path) -> None:
    """A colleague pushed a key on a branch this clone never fetched: it is found,
    rolled and purged from the remote too."""
    from tests.helpers.gitrepo import fake_key

    colleague = tmp_path / "colleague"
    git(tmp_path, "clone", "-q", str(world.origin), str(colleague))
    late = fake_key(seed="pushed-by-a-colleague")
    world.sandbox.state.add_key(late, name="pushed by a colleague")
    (colleague / "late.env").write_text(f"STRIPE_KEY={late}\n")
    git(colleague, "checkout", "-q", "-b", "feat")
    git(colleague, "add", "late.env")
    git(colleague, "-c", "user.name=C", "-c", "user.email=c@x", "commit", "-q",
        "-m", "late")
    git(colleague, "push", "-q", "origin", "feat")

    respond(world, "--no-push")

    assert late not in git(world.repo, "log", "--all", "-p")
    journal = Journal(world.only_incident())
    assert journal.find("detect", "fetched")
    assert fingerprint(late) in {e.data["fingerprint"]
                                 for e in journal.find("detect", "finding")}
    assert world.rotations(late) == 1


def test_respond_says_incomplete_when_a_remote_cannot_be_fetched(
    world: World, tmp_path: Path
) -> None:
    git(world.repo, "remote", "add", "gone", str(tmp_path / "no-such-remote.git"))

    result = invoke(*world.respond_args(), env=world.env())

    assert result.exit_code == 1
    assert "incomplete" in result.stdout
    report = json.loads((world.only_incident() / "report.json").read_text())
    assert report["summary"]["history_complete"] is False
    assert report["incident"]["closed_at"] is None
    assert "could not be read" in report["summary"]["next_steps"][0]


def test_relative_delivery_targets_are_anchored_where_respond_started(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resume from another directory must deliver to the same place."""
    app = tmp_path / "app"
    app.mkdir()
    monkeypatch.chdir(app)
    args = [a for a in world.respond_args() if a != "--deliver"
            and not a.startswith("file:")]

    invoke(*args, "--deliver", "file:keys/{fingerprint}.key", env=world.env(),
           exit_code=0)

    [started] = Journal(world.only_incident()).find("respond", "started")
    anchored = f"file:{app}/keys/{{fingerprint}}.key"
    assert started.data["options"]["deliver"] == [anchored]
    for leaked in world.live_api_keys:
        assert (app / "keys" / f"{fingerprint(leaked)[:12]}.key").exists()


def test_a_delivery_that_always_fails_keeps_the_key_and_says_so(
    world: World,
) -> None:
    """exec:false never takes the key: it waits in a 0600 file, a manual step asks
    to move it, and the record says it was not delivered."""
    args = [a for a in world.respond_args() if a != "--deliver"
            and not a.startswith("file:")]

    result = invoke(*args, "--deliver", "exec:false {fingerprint}", env=world.env(),
                    exit_code=0)

    directory = world.only_incident()
    journal = Journal(directory)
    for leaked in world.live_api_keys:
        kept = directory / f"new-key-{fingerprint(leaked)[:12]}.txt"
        assert kept.read_text().strip() == new_secret_for(world, leaked)
        assert kept.stat().st_mode & 0o777 == 0o600
        assert journal.find(None, "manual-step-pending",
                            step_id=f"move-new-key-{fingerprint(leaked)[:12]}")
        assert str(kept) in " ".join(result.stderr.split())
    report = (directory / "report.md").read_text()
    assert "NOT delivered" in report and "emergency file" in report


def test_ctrl_c_says_how_to_continue(world: World,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Interrupted mid-response: the message names the exact resume command."""
    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("incident.keys.roll_keys", interrupted)

    result = invoke(*world.respond_args(), env=world.env(), exit_code=3)

    incident = world.only_incident().name
    said = " ".join(result.stderr.split())
    assert "nothing more was changed" not in said
    assert (f"continue with: incident respond {world.repo} --resume {incident} "
            f"--incident-dir {world.incidents}") in said


def test_a_key_glued_into_a_branch_name_is_masked_not_fatal(world: World) -> None:
    """key_sk_live_… in a ref name: journaled redacted, renamed by the purge."""
    leaked = world.live_api_keys[0]
    git(world.repo, "branch", f"key_{leaked}")

    output = respond(world)

    assert leaked not in output
    assert leaked not in Journal(world.only_incident()).path.read_text()
    assert leaked not in git(world.repo, "for-each-ref")


def test_a_second_remote_holding_the_keys_gets_its_own_step(
    world: World, tmp_path: Path
) -> None:
    """Only origin is pushed; a second remote that has the keys stays an open
    step, and the command it gives cleans that remote too."""
    second = tmp_path / "second.git"
    git(tmp_path, "clone", "-q", "--bare", str(world.origin), str(second))
    git(world.repo, "remote", "add", "second", str(second))
    git(world.repo, "fetch", "-q", "second")

    respond(world)

    journal = Journal(world.only_incident())
    [step] = journal.find(None, "manual-step-pending", step_id="push-to-second")
    reachable = git(world.origin, "log", "--all", "-p")
    assert not any(secret in reachable for secret in world.secrets)
    assert not scan_repository(second).clean
    invoke("purge", str(world.repo), "--push", "--remote", "second", "--yes",
           "--incident", journal.incident_id, "--incident-dir", str(world.incidents),
           exit_code=0)
    git(second, "reflog", "expire", "--expire=now", "--all")
    git(second, "gc", "-q", "--prune=now")
    assert scan_repository(second).clean
    assert "--remote second" in step.data["instructions"][0]
    # The purge closed the step it answered.
    assert journal.find(None, "manual-step-done", step_id="push-to-second")


def test_a_dirty_worktree_is_refused_before_any_key_is_rotated(
    world: World, tmp_path: Path
) -> None:
    linked = tmp_path / "linked"
    git(world.repo, "worktree", "add", "-q", str(linked), "-b", "side")
    (world.repo / "README.md").write_text("unsaved work\n")

    result = invoke("respond", str(linked), "--yes", "--incident-dir",
                    str(world.incidents), env=world.env(), exit_code=3)

    assert "uncommitted changes" in result.stderr
    assert all(world.rotations(k) == 0 for k in world.live_api_keys)
    assert (world.repo / "README.md").read_text() == "unsaved work\n"


def test_respond_from_a_linked_worktree_cleans_every_tree(
    world: World, tmp_path: Path
) -> None:
    linked = tmp_path / "linked"
    git(world.repo, "worktree", "add", "-q", str(linked), "-b", "side")

    invoke("respond", str(linked), "--yes", "--incident-dir", str(world.incidents),
           "--deliver", f"file:{world.new_keys}/{{fingerprint}}.key",
           env=world.env(), exit_code=0)

    assert scan_repository(world.repo).clean and scan_repository(linked).clean
    steps = {e.data["step_id"] for e in Journal(world.only_incident()).find(
        None, "manual-step-pending")}
    assert "purge-your-own-clone" not in steps  # it was rewritten in place


def test_missing_objects_stop_the_rewrite_with_the_way_to_get_them(
    world: World,
) -> None:
    """Keys are still rolled (containment first); the rewrite is refused with a
    plain reason instead of failing inside git bundle."""
    blob = git(world.repo, "rev-parse", "HEAD:README.md").strip()
    loose = world.repo / ".git" / "objects" / blob[:2] / blob[2:]
    assert loose.exists()
    loose.unlink()

    result = invoke(*world.respond_args(), env=world.env(), exit_code=3)

    said = " ".join(result.stderr.split())
    assert "missing or damaged" in said and "git fetch --refetch" in said
    assert all(world.rotations(k) == 1 for k in world.live_api_keys)


def test_a_bad_delivery_target_can_be_replaced_on_resume(world: World) -> None:
    args = [a for a in world.respond_args() if a != "--deliver"
            and not a.startswith("file:")]
    stopped = invoke(*args, "--deliver", f"file:{world.new_keys}/one.key",
                     env=world.env())
    assert stopped.exit_code != 0 and "{fingerprint}" in stopped.stderr
    assert all(world.rotations(k) == 0 for k in world.live_api_keys)

    invoke("respond", "--resume", world.only_incident().name, "--incident-dir",
           str(world.incidents), "--yes", "--deliver",
           f"file:{world.new_keys}/{{fingerprint}}.key", env=world.env(), exit_code=0)

    for leaked in world.live_api_keys:
        delivered = world.new_keys / f"{fingerprint(leaked)[:12]}.key"
        assert delivered.read_text().strip() == new_secret_for(world, leaked)


def test_keys_waiting_in_emergency_files_go_to_targets_given_on_resume(
    world: World,
) -> None:
    """Every target failed, so the new keys wait in 0600 files; a resume with a
    working --deliver moves them there, deletes the files, closes the steps."""
    args = [a for a in world.respond_args() if a != "--deliver"
            and not a.startswith("file:")]
    invoke(*args, "--deliver", "exec:false {fingerprint}", env=world.env(),
           exit_code=0)
    directory = world.only_incident()
    assert list(directory.glob("new-key-*.txt"))

    result = invoke("respond", "--resume", directory.name, "--incident-dir",
                    str(world.incidents), "--yes", "--deliver",
                    f"file:{world.new_keys}/{{fingerprint}}.key", env=world.env(),
                    exit_code=0)

    assert not list(directory.glob("new-key-*.txt"))
    for leaked in world.live_api_keys:
        delivered = world.new_keys / f"{fingerprint(leaked)[:12]}.key"
        assert delivered.read_text().strip() == new_secret_for(world, leaked)
        assert world.rotations(leaked) == 1
    journal = Journal(directory)
    assert journal.find(None, "manual-step-done",
                        step_id=f"move-new-key-{fingerprint(world.live_api_keys[0])[:12]}")
    assert "delivered to" in result.stderr
