"""Playbooks: the readable, versioned list of steps that ``incident respond`` runs.

A playbook is YAML (format 1). The tool only runs the actions it knows; a playbook
can reorder steps, drop optional ones, change their parameters and add manual steps,
but an action that needs the scan's findings must come after the scan.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from incident.errors import UsageError

FORMAT = 1
DEFAULT_NAME = "stripe-key-leak.yaml"

PHASES = ("detect", "assess", "contain", "eradicate", "recover", "record")

# action -> the parameters its `with:` may set, and their types.
ACTIONS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "scan": {},
    "liveness": {},
    "roll": {"grace": int, "include_test": bool, "deliver": list},
    "purge": {"in_place": bool, "replacement": str},
    "push": {"remote": str},
    "report": {"formats": list},
    "manual": {},
}
# Actions that work on the keys the scan found.
_NEEDS_SCAN = {"liveness", "roll", "purge", "push"}
_STEP_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_STEP_FIELDS = {"id", "phase", "title", "action", "confirm", "irreversible",
                "instructions", "with"}
_TOP_FIELDS = {"format", "name", "version", "title", "description", "steps"}


@dataclass(frozen=True)
class Step:
    """One step of a playbook.

    Attributes:
        id: unique slug; ``incident step done ID`` closes a manual step by it.
        phase: detect, assess, contain, eradicate, recover or record.
        title: one line for the screen and the report.
        action: what the tool does (``manual``: the operator does it).
        confirm: the question asked before the step, or None to run it unasked.
        irreversible: the step changes something that cannot be undone.
        instructions: what the operator does, for manual steps (Jinja2 templates).
        params: the step's ``with:`` parameters.
    """

    id: str
    phase: str
    title: str
    action: str
    confirm: str | None = None
    irreversible: bool = False
    instructions: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def manual(self) -> bool:
        return self.action == "manual"

    def render_instructions(self, context: dict[str, Any]) -> list[str]:
        """The instructions with the incident's facts filled in."""
        env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
        try:
            return [env.from_string(text).render(**context)
                    for text in self.instructions]
        except TemplateError as exc:
            raise UsageError(f"playbook step {self.id!r}: {exc}",
                             "Use only incident, repo, remote, keys and report in "
                             "instructions.") from None


@dataclass(frozen=True)
class Playbook:
    """A parsed, validated playbook and where it came from."""

    name: str
    version: str
    title: str
    description: str
    steps: tuple[Step, ...]
    source: str
    sha256: str

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)


def default_playbook_path() -> Path:
    """The playbook shipped with the package (``playbooks/`` links to it)."""
    return Path(str(resources.files("incident.playbook") / DEFAULT_NAME))


def load_playbook(path: Path | None = None) -> Playbook:
    """Read and validate a playbook file (the shipped one by default).

    Raises:
        UsageError: the file cannot be read, is not YAML, or breaks a rule; the
            message names the step and the field.
    """
    path = path or default_playbook_path()
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read playbook {path}: {exc.strerror}",
                         "Check the --playbook path.") from None
    return parse_playbook(text, str(path))


def parse_playbook(text: bytes, source: str) -> Playbook:
    """Validate playbook text; see load_playbook."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"playbook {source} is not valid YAML: {exc}",
                         "Fix the file; see README.md, Playbooks.") from None
    where = f"playbook {source}"
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a mapping at the top level",
                         "Start from playbooks/stripe-key-leak.yaml.")
    _no_unknown(data, _TOP_FIELDS, where)
    if data.get("format") != FORMAT:
        raise UsageError(f"{where}: format must be {FORMAT}, not "
                         f"{data.get('format')!r}",
                         f"Add 'format: {FORMAT}' (the only format this version "
                         "reads).")
    name = _text(data, "name", where)
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise UsageError(f"{where}: 'steps' must be a non-empty list",
                         "List the steps in order under 'steps:'.")
    steps = tuple(_step(item, index, where) for index, item in enumerate(raw_steps, 1))
    _check_order(steps, where)
    return Playbook(
        name=name,
        version=str(data.get("version", "")),
        title=str(data.get("title", name)),
        description=str(data.get("description", "")).strip(),
        steps=steps,
        source=source,
        sha256=hashlib.sha256(text).hexdigest(),
    )


def _step(item: Any, index: int, where: str) -> Step:
    if not isinstance(item, dict):
        raise UsageError(f"{where}: step {index} must be a mapping",
                         "Each step needs at least id, phase, title and action.")
    label = f"{where}, step {index}"
    _no_unknown(item, _STEP_FIELDS, label)
    step_id = _text(item, "id", label)
    if not _STEP_ID.match(step_id):
        raise UsageError(f"{label}: id {step_id!r} must be lower-case letters, digits "
                         "and dashes", "For example: notify-host")
    label = f"{where}, step {step_id!r}"
    phase = _text(item, "phase", label)
    if phase not in PHASES:
        raise UsageError(f"{label}: unknown phase {phase!r}",
                         "Use one of: " + ", ".join(PHASES))
    action = _text(item, "action", label)
    if action not in ACTIONS:
        raise UsageError(f"{label}: unknown action {action!r}",
                         "Use one of: " + ", ".join(ACTIONS))
    params = item.get("with") or {}
    if not isinstance(params, dict):
        raise UsageError(f"{label}: 'with' must be a mapping", "For example: "
                         "with: {grace: 60}")
    allowed = ACTIONS[action]
    for key, value in params.items():
        if key not in allowed:
            raise UsageError(f"{label}: action {action!r} takes no parameter {key!r}",
                             "It takes: " + (", ".join(allowed) or "nothing"))
        if not isinstance(value, allowed[key]) or (
                allowed[key] is int and isinstance(value, bool)):
            expected = getattr(allowed[key], "__name__", "another type")
            raise UsageError(f"{label}: parameter {key!r} has the wrong type",
                             f"Expected a value of type {expected}.")
    instructions = item.get("instructions") or []
    if isinstance(instructions, str):
        instructions = [instructions]
    if not isinstance(instructions, list) or not all(
            isinstance(line, str) for line in instructions):
        raise UsageError(f"{label}: 'instructions' must be a list of lines",
                         "Write one instruction per list item.")
    if action == "manual" and not instructions:
        raise UsageError(f"{label}: a manual step needs instructions",
                         "Say what the operator must do, one item per line.")
    confirm = item.get("confirm")
    if confirm is not None and not isinstance(confirm, str):
        raise UsageError(f"{label}: 'confirm' must be the question to ask",
                         "For example: confirm: Rotate the live keys now?")
    _check_values(action, params, label)
    step = Step(
        id=step_id,
        phase=phase,
        title=_text(item, "title", label),
        action=action,
        confirm=confirm,
        irreversible=bool(item.get("irreversible", False)),
        instructions=tuple(instructions),
        params=dict(params),
    )
    # Render now, with stand-in facts: a template mistake found after the keys
    # were rotated would stop the response halfway.
    step.render_instructions(_SAMPLE_CONTEXT)
    return step


_SAMPLE_CONTEXT: dict[str, Any] = {
    "incident": "inc-00000000T000000Z-0000",
    "repo": "/srv/repository",
    "remote": "origin",
    "keys": ["sk_" + "live_…abcd"],
    "report": "/srv/repository/.incident/report.md",
}
_REPORT_FORMATS = ("markdown", "html", "json")


def _check_values(action: str, params: dict[str, Any], label: str) -> None:
    """Values a type check lets through but the step would fail on mid-run."""
    from incident.keys.model import MAX_GRACE_MINUTES

    grace = params.get("grace")
    if action == "roll" and grace is not None and not 0 <= grace <= MAX_GRACE_MINUTES:
        raise UsageError(f"{label}: grace {grace} is out of range",
                         f"Use 0 to {MAX_GRACE_MINUTES} minutes (Stripe's limit).")
    if action == "roll":
        from incident.delivery import parse_target

        for spec in params.get("deliver", []):
            if not isinstance(spec, str):
                raise UsageError(f"{label}: each deliver target must be text",
                                 "For example: file:/run/secrets/stripe.key")
            parse_target(spec)
    if action == "report":
        unknown = [f for f in params.get("formats", []) if f not in _REPORT_FORMATS]
        if unknown:
            raise UsageError(f"{label}: unknown report format {unknown[0]!r}",
                             "Use: " + ", ".join(_REPORT_FORMATS))


def _check_order(steps: tuple[Step, ...], where: str) -> None:
    seen_ids: set[str] = set()
    seen_actions: set[str] = set()
    for step in steps:
        if step.id in seen_ids:
            raise UsageError(f"{where}: two steps have the id {step.id!r}",
                             "Give each step its own id.")
        seen_ids.add(step.id)
        if step.action in _NEEDS_SCAN and "scan" not in seen_actions:
            raise UsageError(f"{where}, step {step.id!r}: action {step.action!r} "
                             "needs a scan step before it",
                             "Put a step with 'action: scan' first.")
        if step.action == "push" and "purge" not in seen_actions:
            raise UsageError(f"{where}, step {step.id!r}: push needs a purge step "
                             "before it", "Put the purge step before the push.")
        if step.action != "manual" and step.action in seen_actions:
            raise UsageError(f"{where}, step {step.id!r}: action {step.action!r} "
                             "appears twice", "Each tool action runs once.")
        seen_actions.add(step.action)


def _text(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{where}: '{key}' is missing or empty",
                         f"Add a '{key}:' line.")
    return value.strip()


def _no_unknown(item: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(item) - known)
    if unknown:
        raise UsageError(f"{where}: unknown field {unknown[0]!r}",
                         "Known fields: " + ", ".join(sorted(known)))
