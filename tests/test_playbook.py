"""Playbooks: the shipped one and the README's example load; mistakes are refused
when the playbook is loaded, never halfway through a response."""

from __future__ import annotations

from pathlib import Path

import pytest

from incident.errors import UsageError
from incident.playbook import load_playbook

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, steps: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text("format: 1\nname: t\nsteps:\n"
                    "  - {id: detect, phase: detect, title: Scan, action: scan}\n"
                    + steps)
    return path


def test_the_shipped_playbook_loads() -> None:
    playbook = load_playbook(ROOT / "playbooks" / "stripe-key-leak.yaml")
    assert [s.phase for s in playbook.steps][:3] == ["detect", "assess", "contain"]


def test_the_readme_example_loads(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Playbooks"):]
    start = section.index("```yaml") + len("```yaml")
    path = tmp_path / "example.yaml"
    path.write_text(section[start:section.index("```", start)])

    assert [s.id for s in load_playbook(path).steps] == [
        "detect", "contain", "tell-finance"]


@pytest.mark.parametrize(("steps", "complaint"), [
    ("  - {id: tell, phase: recover, title: T, action: manual,\n"
     "     instructions: ['{{ keys | join(, ) }}']}\n", "tell"),
    ("  - {id: tell, phase: recover, title: T, action: manual,\n"
     "     instructions: ['{{ nobody.knows }}']}\n", "nobody"),
    ("  - {id: contain, phase: contain, title: R, action: roll,\n"
     "     with: {grace: 99999}}\n", "out of range"),
    ("  - {id: contain, phase: contain, title: R, action: roll,\n"
     "     with: {deliver: ['ftp:somewhere']}}\n", "cannot understand --deliver"),
    ("  - {id: record, phase: record, title: R, action: report,\n"
     "     with: {formats: [pdf]}}\n", "unknown report format"),
])
def test_mistakes_are_refused_at_load(tmp_path: Path, steps: str,
                                      complaint: str) -> None:
    with pytest.raises(UsageError, match=complaint):
        load_playbook(_write(tmp_path, steps))
