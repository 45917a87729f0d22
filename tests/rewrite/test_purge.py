"""purge_repository: backup, rewrite, verify, push, journal and resume."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from incident.errors import RefusedError
from incident.journal import Journal
from incident.rewrite import PurgeOptions, PurgeVerificationError, purge_repository
from incident.rewrite.encodings import BlobAction, ReplaceOutcome, SecretReplacer
from incident.rewrite.verify import search_bytes, verify_clean
from tests.helpers.gitrepo import GitRepo, fake_key

MARKER = "***STRIPE-KEY-REMOVED***"


def _published(tmp_path: Path, refuse: str | None = None) -> tuple[GitRepo, Path, str]:
    """A working clone pushed to a local bare remote, with a key in its history."""
    key = fake_key(seed="published")
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    work = GitRepo.init(tmp_path / "work")
    work.commit({"README.md": "hi\n"}, message="Initial")
    work.commit({"config.env": f"STRIPE={key}\n"}, message="Add config")
    work.commit({"config.env": "STRIPE=${STRIPE}\n"}, message="Use env")
    work.branch("protected")
    work.branch("release")
    work.tag("v1", message="Release 1")
    work.git("remote", "add", "origin", str(remote))
    work.git("push", "-q", "origin", "main", "protected", "release", "v1")
    if refuse:
        hook = remote / "hooks" / "pre-receive"
        hook.write_text(
            "#!/bin/sh\nwhile read old new ref; do\n"
            f'  if [ "$ref" = "{refuse}" ]; then\n'
            '    echo "GH006: Protected branch update failed for $ref." >&2\n'
            "    exit 1\n  fi\ndone\nexit 0\n"
        )
        hook.chmod(0o755)
    return work, remote, key


def _remote_objects(remote: Path) -> bytes:
    return subprocess.run(
        ["git", "-C", str(remote), "log", "--all", "-p"],
        capture_output=True,
        check=True,
    ).stdout


def test_purge_repository_push_reports_protected_branch(tmp_path: Path) -> None:
    """Each ref is pushed with a lease; the protected one is refused and explained."""
    work, remote, key = _published(tmp_path, refuse="refs/heads/protected")

    result = purge_repository(
        work.path, PurgeOptions(push=True, secrets=(key,), workdir=tmp_path / "wd")
    )

    outcomes = {o.name: o for o in result.push_outcomes}
    assert outcomes["refs/heads/main"].ok
    assert outcomes["refs/heads/release"].ok
    assert outcomes["refs/tags/v1"].ok
    assert not outcomes["refs/heads/protected"].ok
    assert "protected branch" in outcomes["refs/heads/protected"].detail
    main = subprocess.run(
        ["git", "-C", str(remote), "log", "-p", "main", "v1"],
        capture_output=True,
        check=True,
    ).stdout
    assert key.encode() not in main and MARKER.encode() in main
    tag_type = subprocess.run(
        ["git", "-C", str(remote), "cat-file", "-t", "v1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert tag_type.strip() == "tag"
    assert any("Refs the remote refused" in s.title for s in result.next_steps)


def test_purge_repository_backup_is_private_and_restorable(tmp_path: Path) -> None:
    """The bundle is 0600, holds every original ref, and the source is untouched."""
    work, _, key = _published(tmp_path)
    head = work.head()

    result = purge_repository(
        work.path, PurgeOptions(secrets=(key,), workdir=tmp_path / "wd")
    )

    assert result.backup is not None
    assert stat.S_IMODE(result.backup.stat().st_mode) == 0o600
    heads = subprocess.run(
        ["git", "bundle", "list-heads", str(result.backup)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"{head} refs/heads/main" in heads
    assert work.head() == head  # the default rewrites a mirror, not the repo
    assert result.verification is not None and result.verification.clean
    assert result.push_commands and all(
        "--force-with-lease=" in c for c in result.push_commands
    )
    assert not result.push_outcomes


def test_purge_repository_dry_run_changes_nothing(tmp_path: Path) -> None:
    """A dry run counts blobs, commits and refs and leaves no trace."""
    work, _, key = _published(tmp_path)
    before = work.git("for-each-ref")
    listing = sorted(p.name for p in tmp_path.iterdir())

    result = purge_repository(work.path, PurgeOptions(dry_run=True, secrets=(key,)))

    assert result.dry_run and result.backup is None
    assert result.commits_rewritten == 2 and result.blobs_changed == 1
    assert {r.name for r in result.refs} == {
        "refs/heads/main",
        "refs/heads/protected",
        "refs/heads/release",
        "refs/tags/v1",
    }
    assert work.git("for-each-ref") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing


def test_purge_repository_refuses_dirty_in_place(tmp_path: Path) -> None:
    """--in-place with uncommitted changes is refused, with the way forward."""
    work, _, key = _published(tmp_path)
    (work.path / "README.md").write_text("changed\n")

    with pytest.raises(RefusedError) as caught:
        purge_repository(work.path, PurgeOptions(in_place=True, secrets=(key,)))

    assert "uncommitted changes" in caught.value.message
    assert "same command again" in (caught.value.hint or "")


def test_purge_repository_refuses_shallow_clone(tmp_path: Path) -> None:
    """A shallow clone is refused with the unshallow command."""
    _, remote, key = _published(tmp_path)
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{remote}", str(shallow)],
        check=True,
    )

    with pytest.raises(RefusedError) as caught:
        purge_repository(shallow, PurgeOptions(secrets=(key,)))

    assert "git -C" in (caught.value.hint or "")
    assert "fetch --unshallow" in (caught.value.hint or "")


def test_purge_repository_verification_failure_keeps_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If a key survives the rewrite, the purge fails loudly and keeps the backup."""
    work, _, key = _published(tmp_path)

    def broken(self: SecretReplacer, data: bytes) -> ReplaceOutcome:
        return ReplaceOutcome(data, BlobAction.UNCHANGED)

    monkeypatch.setattr(SecretReplacer, "replace", broken)

    with pytest.raises(PurgeVerificationError) as caught:
        purge_repository(
            work.path, PurgeOptions(secrets=(key,), push=True, workdir=tmp_path / "wd")
        )

    result = caught.value.result
    assert result.backup is not None and result.backup.exists()
    assert result.verification is not None and not result.verification.clean
    assert {r.check for r in result.verification.remnants} == {"bytes", "scan"}
    assert key not in caught.value.message
    assert not result.push_outcomes


def test_purge_repository_in_place_with_journal_and_resume(tmp_path: Path) -> None:
    """Journal events bracket each step; a resumed run does not push twice."""
    work, remote, key = _published(tmp_path)
    journal = Journal.create(tmp_path / "incidents", "inc-test")
    options = PurgeOptions(in_place=True, push=True, secrets=(key,))

    first = purge_repository(work.path, options, journal)
    second = purge_repository(work.path, options, journal)

    events = [(e.step, e.event) for e in journal.events()]
    for name in ("backup", "rewrite", "verify", "push"):
        started = events.index(("purge", f"{name}-started"))
        done = events.index(("purge", f"{name}-done"))
        assert started < done
    assert events.count(("purge", "push-started")) == 1
    assert first.pushed and second.resumed
    # The second run reports what the first pushed, without pushing again.
    assert [(o.name, o.ok) for o in second.push_outcomes] == [
        (o.name, o.ok) for o in first.push_outcomes
    ]
    assert key not in journal.path.read_text()
    assert key.encode() not in _remote_objects(remote)


def test_purge_repository_resume_pushes_only_what_is_left(tmp_path: Path) -> None:
    """After an interrupted push, a resumed run pushes only the refs not yet done."""
    work, remote, key = _published(tmp_path, refuse="refs/heads/protected")
    journal = Journal.create(tmp_path / "incidents", "inc-resume")
    options = PurgeOptions(push=True, secrets=(key,))
    first = purge_repository(work.path, options, journal)
    # Simulate the crash: forget that the push finished; lift the protection.
    lines = journal.path.read_text().splitlines()
    journal.path.write_text(
        "\n".join(line for line in lines if '"push-done"' not in line) + "\n"
    )
    (remote / "hooks" / "pre-receive").unlink()

    second = purge_repository(work.path, options, journal)

    assert [o.name for o in first.push_outcomes if not o.ok] == ["refs/heads/protected"]
    assert all(o.ok for o in second.push_outcomes)
    pushed_again = [e.data["name"] for e in journal.find("purge", "push-ref")][
        len(first.push_outcomes):]
    assert pushed_again == ["refs/heads/protected"]


def test_purge_repository_resume_retries_refused_refs(tmp_path: Path) -> None:
    """A push that finished with a refusal is retried on resume, refused refs only."""
    work, remote, key = _published(tmp_path, refuse="refs/heads/protected")
    journal = Journal.create(tmp_path / "incidents", "inc-refused")
    options = PurgeOptions(push=True, secrets=(key,))
    first = purge_repository(work.path, options, journal)
    (remote / "hooks" / "pre-receive").unlink()  # the protection is lifted

    second = purge_repository(work.path, options, journal)

    assert [o.name for o in first.push_outcomes if not o.ok] == ["refs/heads/protected"]
    assert all(o.ok for o in second.push_outcomes)
    assert {o.name for o in second.push_outcomes} == {
        o.name for o in first.push_outcomes}
    assert key.encode() not in _remote_objects(remote)


def test_purge_repository_remote_moved_is_not_overwritten(tmp_path: Path) -> None:
    """A ref that moved on the remote to history never seen is left alone."""
    work, remote, key = _published(tmp_path)
    other = GitRepo.init(tmp_path / "other")
    other.git("remote", "add", "origin", str(remote))
    other.git("fetch", "-q", "origin")
    other.git("checkout", "-q", "-b", "release", "origin/release")
    other.commit({"new.txt": "teammate's work\n"}, message="Teammate")
    other.git("push", "-q", "origin", "release")
    work.git("fetch", "-q", "origin", "main")  # release stays stale locally

    result = purge_repository(work.path, PurgeOptions(push=True, secrets=(key,)))

    outcomes = {o.name: o for o in result.push_outcomes}
    assert not outcomes["refs/heads/release"].ok
    assert "never saw" in outcomes["refs/heads/release"].detail
    assert (
        other.head()
        == subprocess.run(
            ["git", "-C", str(remote), "rev-parse", "release"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )


def test_verify_clean_finds_unreachable_and_metadata(tmp_path: Path) -> None:
    """The byte search sees dangling objects and files like packed-refs."""
    repo = GitRepo.init(tmp_path / "r")
    key = fake_key(seed="verify")
    repo.commit({"a.txt": "clean\n"})
    repo.git("hash-object", "-w", "--stdin", input=f"dangling {key}\n".encode())

    result = verify_clean(repo.path, [key])

    assert not result.clean
    assert {r.check for r in result.remnants} >= {"bytes", "scan"}
    (repo.path / ".git" / "FETCH_HEAD").write_text(key.encode("utf-16-le").hex())
    assert search_bytes(repo.path, [key])


def test_purge_repository_push_renames_key_branch_on_remote(tmp_path: Path) -> None:
    """A branch named with a key is created under its new name and deleted."""
    work, remote, key = _published(tmp_path)
    work.branch("fix/" + key)
    work.git("push", "-q", "origin", "fix/" + key)

    result = purge_repository(work.path, PurgeOptions(push=True, secrets=(key,)))

    by_action = {(o.action, o.ok) for o in result.push_outcomes}
    assert ("create", True) in by_action and ("delete", True) in by_action
    names = subprocess.run(
        ["git", "-C", str(remote), "for-each-ref", "--format=%(refname)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert key not in names and "refs/heads/fix/STRIPE-KEY-REMOVED-" in names
    assert all(key not in o.name for o in result.push_outcomes)


def test_purge_repository_pull_refs_are_explained(tmp_path: Path) -> None:
    """Hidden refs/pull/* refuse the push; the refusal is explained and listed."""
    work, remote, key = _published(tmp_path)
    leak = work.git("rev-list", "-1", "--grep", "Add config", "main")
    subprocess.run(
        ["git", "-C", str(remote), "update-ref", "refs/pull/7/head", leak], check=True
    )
    subprocess.run(
        ["git", "-C", str(remote), "config", "receive.hideRefs", "refs/pull"],
        check=True,
    )
    source = tmp_path / "hosting-mirror.git"
    subprocess.run(
        ["git", "clone", "-q", "--mirror", str(remote), str(source)], check=True
    )

    result = purge_repository(source, PurgeOptions(push=True, secrets=(key,)))

    pull = [o for o in result.push_outcomes if o.name == "refs/pull/7/head"]
    assert pull and not pull[0].ok
    assert "hosting service" in pull[0].detail
    assert "refs/pull/7/head" in result.support_request
    assert leak in result.support_request


def test_purge_repository_workdir_inside_repo_is_excluded(tmp_path: Path) -> None:
    """A backup written inside the work tree is git-ignored, never committable."""
    work, _, key = _published(tmp_path)

    purge_repository(
        work.path, PurgeOptions(secrets=(key,), workdir=work.path / ".incident")
    )

    assert work.git("status", "--porcelain") == ""
    assert "/.incident/" in (work.path / ".git" / "info" / "exclude").read_text()


def test_purge_in_place_clears_records_of_past_operations(tmp_path: Path) -> None:
    """FETCH_HEAD, ORIG_HEAD and COMMIT_EDITMSG name old refs and old messages, and
    a key hides in those as well: an in-place purge must not leave them behind."""
    work, _, key = _published(tmp_path)
    work.branch("hotfix/" + key)
    work.git("push", "-q", "origin", "hotfix/" + key)
    work.git("fetch", "-q", "origin")  # FETCH_HEAD now names the branch
    work.commit({"b.txt": "b\n"}, message=f"Rotate {key} later")  # COMMIT_EDITMSG
    work.git("reset", "-q", "--hard", "HEAD")  # ORIG_HEAD
    git_dir = work.path / ".git"
    assert key in (git_dir / "FETCH_HEAD").read_text()

    result = purge_repository(work.path, PurgeOptions(in_place=True, secrets=(key,)))

    assert result.verification is not None and result.verification.clean
    for name in ("FETCH_HEAD", "COMMIT_EDITMSG"):
        path = git_dir / name
        assert not path.exists() or key not in path.read_text()


def test_resumed_purge_reports_what_the_rewrite_did(tmp_path: Path) -> None:
    """A run resumed after the rewrite reports the same counts, not zeros."""
    work, _, key = _published(tmp_path)
    journal = Journal.create(tmp_path / "incidents", "inc-counts")
    options = PurgeOptions(in_place=True, secrets=(key,))

    first = purge_repository(work.path, options, journal)
    again = purge_repository(work.path, options, journal)

    assert again.resumed
    assert first.blobs_changed > 0 and first.forms
    for name in ("commits_total", "commits_rewritten", "blobs_changed", "forms",
                 "removed_files", "signatures_removed", "first_changed_commits"):
        assert getattr(again, name) == getattr(first, name), name


def test_in_place_purge_from_a_linked_worktree_moves_every_worktree(
    tmp_path: Path,
) -> None:
    """Worktrees share refs and objects: each one ends on the clean history, and
    none keeps the old commits alive through its index, HEAD or reflog."""
    work, _, key = _published(tmp_path)
    linked, detached = tmp_path / "linked", tmp_path / "detached"
    work.git("worktree", "add", "-q", str(linked), "-b", "side", "HEAD~1")
    work.git("worktree", "add", "-q", "--detach", str(detached), "HEAD~1")
    journal = Journal.create(linked / ".incident", "inc-worktrees")

    result = purge_repository(linked, PurgeOptions(in_place=True, secrets=(key,)),
                              journal)

    assert result.verification is not None and result.verification.clean
    for tree in (work.path, linked, detached):
        status = subprocess.run(["git", "-C", str(tree), "status", "--porcelain"],
                                capture_output=True, text=True, check=True).stdout
        assert status == "", f"{tree}: {status}"
        assert key not in (tree / "config.env").read_text()


def test_in_place_purge_refuses_when_another_worktree_is_dirty(
    tmp_path: Path,
) -> None:
    work, _, key = _published(tmp_path)
    linked = tmp_path / "linked"
    work.git("worktree", "add", "-q", str(linked), "-b", "side")
    (linked / "README.md").write_text("unsaved work\n")

    with pytest.raises(RefusedError, match="uncommitted changes") as caught:
        purge_repository(work.path, PurgeOptions(in_place=True, secrets=(key,)))

    assert str(linked) in caught.value.message
    assert (linked / "README.md").read_text() == "unsaved work\n"


def test_support_request_claims_a_push_only_when_there_was_one(tmp_path: Path) -> None:
    work, _, key = _published(tmp_path)
    unpushed = purge_repository(work.path, PurgeOptions(in_place=True,
                                                        secrets=(key,)))
    assert unpushed.support_request.startswith("NOTE, delete before sending")

    work2, _, key2 = _published(tmp_path / "second")
    pushed = purge_repository(work2.path, PurgeOptions(push=True, secrets=(key2,)))
    assert pushed.support_request.startswith("Subject:")
    assert "force-pushed" in pushed.support_request


def test_two_purges_in_the_same_second_do_not_collide(tmp_path: Path) -> None:
    work, _, key = _published(tmp_path)
    options = PurgeOptions(secrets=(key,), workdir=tmp_path / "out")

    first = purge_repository(work.path, options)
    second = purge_repository(work.path, options)

    assert first.backup != second.backup and first.rewritten != second.rewritten


def test_push_commands_without_a_remote_never_point_at_the_local_clone(
    tmp_path: Path,
) -> None:
    """In the mirror, 'origin' is the clone it was made from: commands must not
    push the clean history back there and call it published."""
    key = fake_key(seed="no-remote-commands")
    repo = GitRepo.init(tmp_path / "repo")
    repo.commit({"a.env": f"K={key}\n"}, message="leak")

    result = purge_repository(repo.path, PurgeOptions(secrets=(key,)))

    pushes = [c for c in result.push_commands if not c.startswith("#")]
    assert pushes and all("REMOTE-URL" in c for c in pushes)
    assert any("no remote named 'origin'" in c for c in result.push_commands)
