"""Deliver new keys that are waiting in emergency files to targets given later.

A rotation whose every --deliver target failed leaves the new key in a 0600 file
in the incident folder. When the operator resumes with working targets, the key
goes there, the file is deleted, and the step that asked to move it is closed:
the new key is never lost, and never left lying around once it has a home.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from incident.delivery import deliver_secret, parse_target
from incident.journal import Journal
from incident.keys.resume import STEP
from incident.keys.roll import fill_target
from incident.redact import fingerprint


def redeliver_waiting_keys(journal: Journal, specs: Sequence[str]) -> list[str]:
    """Deliver every new key still waiting in an emergency file; what happened."""
    if not specs:
        return []
    order = _roll_order(journal)
    modes = {e.data.get("fingerprint"): str(e.data.get("mode") or "live")
             for e in journal.find("detect", "finding")}
    said = []
    for event in journal.find(STEP, "delivered"):
        leaked = str(event.data.get("fingerprint") or "")
        waiting = event.data.get("emergency_file")
        if not leaked or not waiting or event.data.get("targets"):
            continue
        path = Path(str(waiting))
        if not path.is_file() or _delivered_later(journal, leaked, event.time):
            continue
        secret = path.read_text().strip()
        index = order.index(leaked) + 1 if leaked in order else 1
        targets = [parse_target(fill_target(spec, leaked[:12], index,
                                            modes.get(leaked, "live")))
                   for spec in specs]
        outcome = deliver_secret(secret, targets, path)
        if not outcome.delivered:
            said.append(f"new key {event.data.get('new_key_id')}: still only in "
                        f"{path} ({'; '.join(r for _, r in outcome.failed)})")
            continue
        journal.append(STEP, "delivered", fingerprint=leaked,
                       new_key_id=event.data.get("new_key_id"),
                       new_fingerprint=fingerprint(secret),
                       targets=outcome.delivered, failed=[], emergency_file=None,
                       from_emergency_file=str(path))
        path.unlink()
        step_id = f"move-new-key-{leaked[:12]}"
        if journal.find(None, "manual-step-pending", step_id=step_id):
            journal.append(step_id, "manual-step-done", step_id=step_id,
                           note="delivered to " + ", ".join(outcome.delivered))
        said.append(f"new key {event.data.get('new_key_id')}: delivered to "
                    f"{', '.join(outcome.delivered)}; {path.name} deleted")
    return said


def _roll_order(journal: Journal) -> list[str]:
    started = journal.find(STEP, "roll-started")
    return [str(fp) for fp in (started[0].data.get("keys") or [])] if started else []


def _delivered_later(journal: Journal, leaked: str, since: str) -> bool:
    return any(e.time > since and e.data.get("targets")
               for e in journal.find(STEP, "delivered", fingerprint=leaked))
