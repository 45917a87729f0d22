"""What no rewrite can reach, and the concrete next step for each.

A rewrite cleans one repository. Copies elsewhere (other clones, forks, the hosting
service's pull-request refs and caches) still hold the keys; the operator gets a
list of steps and a support request ready to send.
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import Environment, StrictUndefined

_SUPPORT_TEMPLATE = """\
{%- if not pushed -%}
NOTE, delete before sending: the rewritten history was not pushed when this was
written. Send this only after the force-push, and once the keys are rotated.

{% endif -%}
Subject: Sensitive data removal request for {{ repository }}

Hello,

We accidentally committed secret API keys to {{ repository }}. We have rewritten the
repository's history to remove them ({{ commits_rewritten }} commits rewritten on
{{ date }}) and force-pushed the rewritten branches and tags.

Copies we cannot remove ourselves remain on your side. Please:

1. Remove or garbage-collect the cached views of the old commits, and run a garbage
   collection on the repository so the unreferenced objects are purged.
2. Remove or dereference these pull-request refs, which still point at the old
   history:
{%- if pull_refs %}
{%- for ref in pull_refs %}
   - {{ ref }}
{%- endfor %}
{%- else %}
   - (none seen on the remote; please check for pull requests opened from forks)
{%- endif %}
3. Check forks of this repository for the same commits.

The first changed commits (original ids) are:
{%- for sha in first_changed %}
   - {{ sha }}
{%- endfor %}
Any commit that descends from one of them holds the removed data.

Thank you.
"""


@dataclass(frozen=True)
class NextStep:
    """One thing the operator still has to do."""

    title: str
    action: str


def support_request(repository: str, first_changed: list[str], pull_refs: list[str],
                    commits_rewritten: int, date: str, pushed: bool = True) -> str:
    """The text to send to the hosting service's support."""
    environment = Environment(undefined=StrictUndefined, autoescape=False,
                              keep_trailing_newline=True)
    return environment.from_string(_SUPPORT_TEMPLATE).render(
        repository=repository,
        first_changed=first_changed[:20],
        pull_refs=sorted(pull_refs),
        commits_rewritten=commits_rewritten,
        date=date,
        pushed=pushed,
    )


def unreachable_copies(
    *, source: str | None, backup: str, pushed: bool, push_failed: list[str],
    first_changed: list[str], pull_refs: list[str], signatures_removed: int,
    removed_files: int, submodules: list[str], lfs_pointers: list[str],
) -> list[NextStep]:
    """The steps left after a purge, most urgent first."""
    steps: list[NextStep] = [
        NextStep("Roll the keys",
                 "A purge does not make a key safe: anyone who cloned or viewed the "
                 "history has it. Roll every key first: incident roll"),
    ]
    if not pushed:
        steps.append(NextStep("Push the rewritten history",
                              "Run the push commands above, or run again with --push."))
    if push_failed:
        steps.append(NextStep("Refs the remote refused",
                              "Push these by hand once the block is lifted: "
                              + ", ".join(push_failed)))
    first = first_changed[0] if first_changed else "FIRST-CHANGED-COMMIT"
    if source is not None:
        steps.append(NextStep("Your own clone",
                              f"{source} still holds the old history (the rewrite "
                              "ran on a mirror). After the push, move it aside and "
                              "clone again; do not pull into it."))
    steps += [
        NextStep("Other clones",
                 "Every clone still holds the keys. Ask each owner to delete it and "
                 "clone again; a `git pull` would merge the old history back. A "
                 "clone is stale when this succeeds in it: git cat-file -e "
                 f"{first}^{{commit}}"),
        NextStep("Forks",
                 "Forks keep the old commits: ask their owners to delete and re-fork, "
                 "or ask the hosting service's support (request below)."),
        NextStep("Pull-request refs and caches",
                 "refs/pull/* are read-only and cached views of old commits stay "
                 "reachable by id: send the support request below"
                 + (f" ({len(pull_refs)} pull-request refs seen)." if pull_refs
                    else ".")),
        NextStep("Old objects on the remote",
                 "After a force-push the remote still stores the old commits, "
                 "unreachable, until it collects garbage. On a server you run: git "
                 "reflog expire --expire=now --all && git gc --prune=now in its "
                 "repository; on a hosting service, the support request asks for it."),
        NextStep("CI caches, artifacts and mirrors",
                 "Clear CI caches and build artifacts made from the old commits, and "
                 "re-sync any mirror."),
        NextStep("Delete the backup when done",
                 f"{backup} holds the keys. Delete it (shred -u) once the push is "
                 "done, the keys are rolled and the team has re-cloned."),
    ]
    if signatures_removed:
        steps.append(NextStep("Signatures",
                              f"{signatures_removed} signed commits or tags lost their "
                              "signature; re-sign release tags if you rely on them."))
    if removed_files:
        steps.append(NextStep("Removed files",
                              f"{removed_files} file versions (archives or binaries "
                              "holding a key) were removed from history; rebuild them "
                              "from source if they are still needed."))
    if submodules or lfs_pointers:
        steps.append(NextStep("Submodules and LFS",
                              "Submodules and Git LFS objects live elsewhere and were "
                              "not rewritten; scan and purge them on their own: "
                              + ", ".join([*submodules, *lfs_pointers][:10])))
    return steps
