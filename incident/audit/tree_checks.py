"""The audit's current-tree checks: how the files as they are now handle keys.

Each check returns a Check: what it found, where, why that matters and the fix. A
key the allowlist names is listed as a pass with the allowlist's reason; a key in a
file not committed yet is a warning, since it is not published (yet).
"""

from __future__ import annotations

import logging
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from incident.allowlist import ALLOWLIST_FILE, Allowlist
from incident.audit.clients import find_client_sites, index_functions, is_source_file
from incident.audit.model import Check, Item, Status, sort_items, worst
from incident.audit.tree import IGNORE_EXPECTED, CurrentTree, TreeFile, categorize
from incident.detect.content import KeyMatch, scan_bytes
from incident.errors import GitError
from incident.guard.gitio import RepoPaths
from incident.redact import fingerprint, redact

logger = logging.getLogger(__name__)

@dataclass
class TreeKeys:
    """Secrets found in current files, grouped by the check that owns each file."""

    by_category: dict[str, list[tuple[TreeFile, KeyMatch]]] = field(
        default_factory=dict
    )


def find_tree_keys(tree: CurrentTree) -> TreeKeys:
    """Scan every current file once and group the secrets by file category."""
    keys = TreeKeys()
    for file in tree.files:
        category = categorize(file)
        keys.by_category.setdefault(category, [])
        for match in scan_bytes(file.data):
            if match.ignored is None and match.kind.is_secret:
                keys.by_category[category].append((file, match))
    return keys


def _key_items(found: list[tuple[TreeFile, KeyMatch]],
               allowlist: Allowlist) -> list[Item]:
    items: list[Item] = []
    for file, match in found:
        where = f"{file.path}:{match.line}"
        description = f"{redact(match.secret)} ({match.mode} {match.kind}, " \
                      f"fingerprint {fingerprint(match.secret)[:12]})"
        reason = allowlist.reason_for(fingerprint(match.secret))
        if reason is not None:
            items.append(Item(Status.PASS, where, f"{description}: allowlisted, "
                              f"{reason}"))
        elif not file.tracked:
            # Not published yet: one `git add .` away, so warn rather than fail.
            items.append(Item(Status.WARN, where, f"{description}: not committed; "
                              "remove it or add the file to .gitignore"))
        else:
            items.append(Item(Status.FAIL, where, description))
    return items


def check_keys_in(category: str, keys: TreeKeys, allowlist: Allowlist,
                  tree: CurrentTree) -> Check:
    """Keys in one category of current files: source, CI, containers, k8s, notebooks."""
    spec = _CATEGORY_TEXT[category]
    found = keys.by_category.get(category, [])
    files = len([f for f in tree.files if categorize(f) == category])
    items = _key_items(found, allowlist)
    if category == "container":
        items.extend(_container_warnings(tree))
    if category == "kubernetes":
        items.extend(_kubernetes_warnings(tree, {f.path for f, _ in found}))
    items = sort_items(items)
    status = worst([item.status for item in items])
    failing = len([item for item in items if item.status is Status.FAIL])
    if failing:
        summary = f"{failing} secret key(s) in {spec['noun']}."
    elif status is Status.WARN:
        summary = f"No key in {spec['noun']}, but see the warnings."
    elif files:
        summary = f"No secret key in {files} {spec['noun']}."
    else:
        summary = f"No {spec['noun']} in the {tree.source}."
    return Check(
        id=spec["id"], title=spec["title"], status=status, summary=summary,
        why=spec["why"], fix=spec["fix"] if status is not Status.PASS else "",
        items=items,
    )


_CATEGORY_TEXT: dict[str, dict[str, str]] = {
    "source": {
        "id": "hardcoded-keys",
        "title": "Keys hard-coded in source",
        "noun": "source files",
        "why": "Anyone who can read the code can use the key, and every copy "
               "(forks, caches, CI logs) keeps it.",
        "fix": "Roll the key (incident roll), read it from the environment "
               '(os.environ["STRIPE_API_KEY"]) and remove it from the file; allowlist '
               f"only known test fixtures in {ALLOWLIST_FILE}.",
    },
    "ci": {
        "id": "ci-config",
        "title": "Keys in CI configuration",
        "noun": "CI configuration files",
        "why": "CI files are read by everyone with access and often by forks' "
               "pull-request builds.",
        "fix": "Store the key as a CI secret (GitHub: ${{ secrets.STRIPE_API_KEY }}, "
               "GitLab: masked CI/CD variable) and roll the exposed key.",
    },
    "container": {
        "id": "containers",
        "title": "Keys in Dockerfiles and Compose files",
        "noun": "Dockerfiles and Compose files",
        "why": "A key in a Dockerfile is baked into image layers and image history; "
               "a key in a Compose file is published with the repository.",
        "fix": "Pass the key at run time (environment, env_file outside git, Docker "
               "secrets) or at build time with `RUN --mount=type=secret`.",
    },
    "kubernetes": {
        "id": "kubernetes",
        "title": "Keys in Kubernetes manifests",
        "noun": "Kubernetes manifests",
        "why": "Secret data in a manifest is only base64-encoded: anyone who reads "
               "the file reads the key.",
        "fix": "Create the Secret outside git (kubectl create secret, External "
               "Secrets, Sealed Secrets, SOPS) and roll the exposed key.",
    },
    "notebook": {
        "id": "notebooks",
        "title": "Keys in notebooks (cells and outputs)",
        "noun": "notebooks",
        "why": "Notebooks keep cell sources and outputs, so a key printed once stays "
               "in the file.",
        "fix": "Clear the outputs (jupyter nbconvert --clear-output), read the key "
               "from the environment, and roll the exposed key.",
    },
    "secret-file": {
        "id": "secret-files",
        "title": ".env and other secret files",
        "noun": "secret files",
        "why": "Files such as .env exist to hold secrets; tracked or not ignored, "
               "they get published.",
        "fix": "Add `.env*` (with `!.env.example`) to .gitignore, `git rm --cached` "
               "any tracked secret file, commit a .env.example with names only, and "
               "roll any key it held.",
    },
}

_DOCKER_SECRET_VAR = re.compile(
    r"(?im)^\s*(ARG|ENV)\s+([A-Z0-9_]*STRIPE[A-Z0-9_]*(?:KEY|SECRET)[A-Z0-9_]*)"
    r"(\s*=\s*\S+|\s+\S+)?"
)


def _container_warnings(tree: CurrentTree) -> list[Item]:
    items: list[Item] = []
    for file in tree.files:
        if categorize(file) != "container" or "compose" in file.path.lower():
            continue
        text = file.data.decode("utf-8", "replace")
        for match in _DOCKER_SECRET_VAR.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            items.append(Item(
                Status.WARN, f"{file.path}:{line}",
                f"{match.group(1)} {match.group(2)}: build arguments and ENV values "
                "are recorded in the image; pass the key at run time instead"))
    return items


def _kubernetes_warnings(tree: CurrentTree, with_keys: set[str]) -> list[Item]:
    items: list[Item] = []
    secret_kind = re.compile(rb"(?m)^kind:\s*Secret\s*$")
    has_data = re.compile(rb"(?m)^(data|stringData):\s*\n\s+\S")
    for file in tree.files:
        if categorize(file) != "kubernetes" or file.path in with_keys:
            continue
        if secret_kind.search(file.data) and has_data.search(file.data):
            items.append(Item(
                Status.WARN, file.path,
                "a Secret manifest with data is committed (no Stripe key in it); "
                "keep Secret values out of git"))
    return items


def check_secret_files(paths: RepoPaths, tree: CurrentTree, keys: TreeKeys,
                       allowlist: Allowlist) -> Check:
    """Secret files tracked in git, or present and not ignored."""
    items = _key_items(keys.by_category.get("secret-file", []), allowlist)
    for file in tree.files:
        if categorize(file) != "secret-file":
            continue
        if file.tracked:
            items.append(Item(Status.FAIL, file.path,
                              "tracked in git: whatever it holds is published"))
        else:
            items.append(Item(Status.WARN, file.path,
                              "not tracked, but not ignored either: `git add .` "
                              "would commit it"))
    if paths.work_tree is not None:
        missing = _not_ignored(paths.work_tree, IGNORE_EXPECTED)
        if missing:
            items.append(Item(Status.WARN, ".gitignore",
                              f"{', '.join(missing)} not ignored; add `.env*` (and "
                              "`!.env.example`) to .gitignore"))
    spec = _CATEGORY_TEXT["secret-file"]
    items = sort_items(items)
    status = worst([item.status for item in items])
    failing = len({i.where.split(":")[0] for i in items if i.status is Status.FAIL})
    summary = (f"{failing} secret file(s) tracked or holding keys." if failing
               else "Secret files are not tracked, but see the warnings."
               if status is Status.WARN
               else "No secret file tracked; .env files are ignored."
               if paths.work_tree is not None
               else "No secret file tracked.")
    return Check(id=spec["id"], title=spec["title"], status=status, summary=summary,
                 why=spec["why"], fix=spec["fix"] if status is not Status.PASS else "",
                 items=items)


def _not_ignored(work_tree: Path, names: tuple[str, ...]) -> list[str]:
    """Return which of names `.gitignore` does not cover (checked as if untracked)."""
    result = subprocess.run(
        ["git", "-C", str(work_tree), "check-ignore", "--no-index", "--stdin"],
        input="\n".join(names) + "\n", capture_output=True, text=True, check=False,
    )
    if result.returncode > 1:
        raise GitError(f"git check-ignore failed in {work_tree}: "
                       f"{result.stderr.strip()}")
    ignored = set(result.stdout.splitlines())
    return [name for name in names if name not in ignored]


def check_clients(tree: CurrentTree) -> Check:
    """Stripe clients: is the key read from the environment, and does a gap fail?"""
    items: list[Item] = []
    sources = {f.path: f.data.decode("utf-8", "replace") for f in tree.files
               if is_source_file(f.path)}
    functions = index_functions(list(sources.values()))
    for path, text in sources.items():
        if "tripe" not in text:
            continue
        for site in find_client_sites(path, text, functions):
            items.append(Item(site.status, f"{site.path}:{site.line}", site.detail))
    items = sort_items(items)
    status = worst([item.status for item in items])
    if not items:
        summary = "No Stripe client configuration found in source."
    else:
        good = len([i for i in items if i.status is Status.PASS])
        summary = f"{good} of {len(items)} Stripe client configuration(s) read the " \
                  "key safely and fail clearly without it."
    return Check(
        id="stripe-clients",
        title="Stripe clients configured from the environment or a secrets manager",
        status=status,
        summary=summary,
        why="A key read at run time never enters git; failing at start-up when it "
            "is missing beats a silent fallback or a confusing error at the first "
            "payment.",
        fix=('Read the key with os.environ["STRIPE_API_KEY"] (Python), '
             'ENV.fetch("STRIPE_API_KEY") (Ruby), or check process.env.STRIPE_API_KEY '
             "and throw at start-up (Node)." if status is not Status.PASS else ""),
        items=items,
    )
