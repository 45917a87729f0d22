"""`incident audit`: go / no-go on real repositories, one scenario per check."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from incident.audit import Status, Verdict, run_audit
from incident.audit.clients import find_client_sites
from incident.errors import NotARepositoryError
from incident.redact import fingerprint, redact
from tests.guard.cli_helpers import assert_no_secret, invoke
from tests.helpers.gitrepo import GitRepo, fake_key

GOOD_CLIENT = (
    'import os\nimport stripe\n\nstripe.api_key = os.environ["STRIPE_API_KEY"]\n'
)
GITIGNORE = ".env*\n!.env.example\n"


def status_of(repo: Path) -> dict[str, Status]:
    return {check.id: check.status for check in run_audit(repo).checks}


@pytest.fixture
def clean(repo: GitRepo) -> GitRepo:
    """A repository that should pass every check."""
    repo.commit({"app.py": GOOD_CLIENT, ".gitignore": GITIGNORE}, "clean app")
    return repo


def test_audit_clean_repository_is_go(clean: GitRepo) -> None:
    """Environment-configured client, ignored .env: every check passes, exit 0."""
    result = invoke(["audit", str(clean.path)], expected=0)

    assert "GO" in result.stdout
    assert set(status_of(clean.path).values()) == {Status.PASS}


def test_audit_hard_coded_key_is_no_go(clean: GitRepo) -> None:
    """A key in source fails history, hard-coded keys and client checks; exit 1."""
    key = fake_key(seed="audit-hard")
    clean.commit({"pay.py": f"import stripe\nstripe.api_key = '{key}'\n"}, "leak")

    result = invoke(["audit", str(clean.path)], expected=1)
    statuses = status_of(clean.path)

    assert statuses["history"] is Status.FAIL
    assert statuses["hardcoded-keys"] is Status.FAIL
    assert statuses["stripe-clients"] is Status.FAIL
    assert "pay.py:2" in result.stdout and redact(key) in result.stdout
    assert_no_secret(result, key)


def test_audit_key_only_in_history_fails_history_alone(clean: GitRepo) -> None:
    """A key removed from the tree but still in history is a no-go from history."""
    key = fake_key(seed="audit-old")
    clean.commit({"old.py": f"K = '{key}'\n"}, "leak")
    clean.commit({"old.py": None}, "remove")

    statuses = status_of(clean.path)

    assert statuses["history"] is Status.FAIL
    assert statuses["hardcoded-keys"] is Status.PASS


@pytest.mark.parametrize(
    ("files", "check_id", "status"),
    [
        ({".github/workflows/ci.yml": "env:\n  STRIPE_API_KEY: {key}\n"},
         "ci-config", Status.FAIL),
        ({".gitlab-ci.yml": "variables:\n  STRIPE_API_KEY: {key}\n"},
         "ci-config", Status.FAIL),
        ({"Dockerfile": "FROM python\nENV STRIPE_SECRET_KEY={key}\n"},
         "containers", Status.FAIL),
        ({"docker-compose.yml": "services:\n  web:\n    environment:\n"
          "      STRIPE_API_KEY: {key}\n"}, "containers", Status.FAIL),
        ({"deploy/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n"
          "  name: s\ndata:\n  key: {b64}\n"}, "kubernetes", Status.FAIL),
        ({"analysis.ipynb": '{{"cells": [{{"outputs": [{{"text": ["{key}\\n"]}}]}}]}}'},
         "notebooks", Status.FAIL),
        ({".env.production": "STRIPE_API_KEY={key}\n"}, "secret-files", Status.FAIL),
    ],
)
def test_audit_keys_in_config_files_fail_their_check(
        repo: GitRepo, files: dict[str, str], check_id: str, status: Status) -> None:
    """Keys in CI, Docker, Compose, Kubernetes, notebooks and .env fail that check."""
    key = fake_key(seed=check_id)
    b64 = base64.b64encode(key.encode()).decode()
    repo.commit({".gitignore": GITIGNORE}, "ignore")
    repo.git("add", "-f", "--", ".gitignore")
    for name, text in files.items():
        target = repo.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.format(key=key, b64=b64))
        repo.git("add", "-f", "--", name)
    repo.commit(message="config")

    statuses = status_of(repo.path)

    assert statuses[check_id] is status
    assert statuses["hardcoded-keys"] is Status.PASS


def test_audit_secret_files_tracked_untracked_and_ignore_rules(repo: GitRepo) -> None:
    """Tracked .env fails; an untracked, unignored .env and no ignore rule warn."""
    repo.commit({"app.py": GOOD_CLIENT}, "app")
    (repo.path / ".env").write_text("DEBUG=1\n")

    unignored = run_audit(repo.path)
    repo.commit({".env": "DEBUG=1\n"}, "track env")
    tracked = {c.id: c for c in run_audit(repo.path).checks}

    check = next(c for c in unignored.checks if c.id == "secret-files")
    assert check.status is Status.WARN
    assert unignored.verdict is Verdict.GO
    assert {i.where for i in check.items} == {".env", ".gitignore"}
    assert tracked["secret-files"].status is Status.FAIL
    assert "tracked in git" in tracked["secret-files"].items[0].detail


def test_audit_dockerfile_build_arg_warns(clean: GitRepo) -> None:
    """ARG STRIPE_SECRET_KEY bakes the key into image history: a warning."""
    clean.commit({"Dockerfile": "FROM python\nARG STRIPE_SECRET_KEY\n"}, "docker")

    report = run_audit(clean.path)

    check = next(c for c in report.checks if c.id == "containers")
    assert check.status is Status.WARN
    assert check.items[0].where == "Dockerfile:2"


def test_audit_submodule_is_unknown_not_pass(clean: GitRepo, tmp_path: Path) -> None:
    """A submodule cannot be read: the verdict is 'could not decide', exit 2."""
    other = GitRepo.init(tmp_path / "other")
    other.commit({"x.txt": "x\n"}, "other")
    clean.git("-c", "protocol.file.allow=always", "submodule", "add", "-q",
              str(other.path), "vendor/other")
    clean.commit(message="submodule")

    result = invoke(["audit", str(clean.path), "--format", "json"], expected=2)

    data = json.loads(result.stdout)
    unscanned = next(c for c in data["checks"] if c["id"] == "unscanned")
    assert data["verdict"] == "could not decide"
    assert unscanned["status"] == "unknown"
    assert [i["where"] for i in unscanned["items"]] == ["vendor/other"]


def test_audit_missing_lfs_content_is_unknown(clean: GitRepo) -> None:
    """An LFS pointer whose object is absent is listed as an unknown."""
    pointer = ("version https://git-lfs.github.com/spec/v1\n"
               f"oid sha256:{'ab' * 32}\nsize 1234\n")
    clean.commit({"data/model.bin": pointer}, "lfs pointer")

    report = run_audit(clean.path)

    check = next(c for c in report.checks if c.id == "unscanned")
    assert check.status is Status.UNKNOWN
    assert "data/model.bin" in {i.where for i in check.items}


def test_audit_allowlisted_fixture_is_go(clean: GitRepo) -> None:
    """A test key named in the allowlist passes history and tree checks, with why."""
    key = fake_key("sk_" + "test_", seed="audit-fixture")
    clean.commit({
        "tests/fixtures/charge.json": json.dumps({"api_key": key}) + "\n",
        ".incident-allowlist.yaml": f"allow:\n  - fingerprint: {fingerprint(key)}\n"
                                    "    reason: charge fixture\n",
    }, "fixture")

    result = invoke(["audit", str(clean.path), "--format", "markdown"], expected=0)

    assert "**Verdict: go**" in result.stdout
    assert "charge fixture" in result.stdout
    assert_no_secret(result, key)


def test_audit_bare_repository_reads_head_tree(clean: GitRepo, tmp_path: Path) -> None:
    """A bare clone is audited from HEAD's tree."""
    key = fake_key(seed="bare")
    clean.commit({"pay.py": f"KEY = '{key}'\n"}, "leak")
    bare = tmp_path / "bare.git"
    clean.git("clone", "-q", "--bare", str(clean.path), str(bare))

    statuses = status_of(bare)

    assert statuses["hardcoded-keys"] is Status.FAIL
    assert statuses["secret-files"] is Status.PASS


def test_audit_not_a_repository(tmp_path: Path) -> None:
    """A folder that is not a repository is a usage error (exit 2)."""
    with pytest.raises(NotARepositoryError):
        run_audit(tmp_path)

    result = invoke(["audit", str(tmp_path)], expected=2)
    assert "not a git repository" in result.stderr


def test_audit_output_file(clean: GitRepo, tmp_path: Path) -> None:
    """-o writes the report to a file and says where."""
    target = tmp_path / "audit.json"

    invoke(["audit", str(clean.path), "--format", "json", "-o", str(target)],
           expected=0)

    assert json.loads(target.read_text())["verdict"] == "go"


@pytest.mark.parametrize(
    ("line", "status"),
    [
        ('stripe.api_key = os.environ["STRIPE_API_KEY"]', Status.PASS),
        ('stripe.api_key = os.getenv("STRIPE_API_KEY")', Status.WARN),
        ('stripe.api_key = os.getenv("STRIPE_API_KEY", "")', Status.WARN),
        ('stripe.api_key = os.getenv("STRIPE_API_KEY") or sys.exit("no key")',
         Status.PASS),
        ("const stripe = new Stripe(process.env.STRIPE_SECRET_KEY);", Status.WARN),
        ("const stripe = require('stripe')(process.env.STRIPE_KEY || 'x');",
         Status.WARN),
        ('Stripe.api_key = ENV.fetch("STRIPE_API_KEY")', Status.PASS),
        ('Stripe.api_key = ENV["STRIPE_API_KEY"]', Status.WARN),
        ("client = StripeClient(get_secret_value(SecretId='stripe'))", Status.PASS),
        ("\\Stripe\\Stripe::setApiKey(getenv('STRIPE_KEY'));", Status.WARN),
        ("stripe.Key = os.Getenv(\"STRIPE_KEY\")", Status.WARN),
        ("stripe.api_key = settings.STRIPE_API_KEY", Status.PASS),
        ("stripe.api_key = '" + fake_key(seed="lit") + "'", Status.FAIL),
    ],
)
def test_client_sites_judged(line: str, status: Status) -> None:
    """Each way of configuring a client gets the expected verdict."""
    sites = find_client_sites("app.src", line + "\n")

    assert [site.status for site in sites] == [status]


def test_client_explicit_check_on_variable_passes() -> None:
    """A variable read leniently but checked with a raise counts as failing clearly."""
    text = ('key = os.getenv("STRIPE_API_KEY")\nif not key:\n'
            '    raise SystemExit("STRIPE_API_KEY is not set")\nstripe.api_key = key\n')

    sites = find_client_sites("app.py", text)

    assert [(s.line, s.status) for s in sites] == [(4, Status.PASS)]


def test_client_key_from_function_in_another_file() -> None:
    """`StripeClient(secret_key())` is judged by the body of secret_key()."""
    from incident.audit.clients import index_functions

    config = ('def secret_key():\n    try:\n        return os.environ["STRIPE_KEY"]\n'
              "    except KeyError:\n        raise ConfigError('unset') from None\n")
    lenient = 'def other_key():\n    return os.getenv("STRIPE_KEY", "")\n'
    functions = index_functions([config, lenient])

    good = find_client_sites("app.py", "c = stripe.StripeClient(secret_key())\n",
                             functions)
    weak = find_client_sites("app.py", "c = stripe.StripeClient(other_key())\n",
                             functions)

    assert [s.status for s in good] == [Status.PASS]
    assert [s.status for s in weak] == [Status.WARN]


def test_audit_key_in_untracked_file_warns(clean: GitRepo) -> None:
    """A key in a file not committed yet (and not ignored) is a warning, not a fail."""
    key = fake_key(seed="untracked")
    (clean.path / "scratch.py").write_text(f"KEY = '{key}'\n")

    report = run_audit(clean.path)

    check = next(c for c in report.checks if c.id == "hardcoded-keys")
    assert check.status is Status.WARN
    assert "not committed" in check.items[0].detail
    assert report.verdict is Verdict.GO


def test_audit_history_scan_failure_is_could_not_decide(clean: GitRepo) -> None:
    """When the history cannot be scanned, the verdict is 'could not decide'."""
    from incident.errors import GitError
    from incident.history.model import ScanReport

    def broken_scan(repo: Path) -> ScanReport:
        raise GitError("git cat-file failed", "Run git fsck.")

    report = run_audit(clean.path, scan=broken_scan)

    history = next(c for c in report.checks if c.id == "history")
    assert history.status is Status.UNKNOWN
    assert history.fix == "Run git fsck."
    assert report.verdict is Verdict.UNDECIDED
    assert int(report.verdict.exit_code) == 2
