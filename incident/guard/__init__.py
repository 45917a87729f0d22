"""Keep a Stripe key from being committed or pushed: the check and its git hooks."""

from incident.guard.findings import GuardFinding, GuardResult
from incident.guard.hooks import HookAction, HookChange, install_hooks, uninstall_hooks
from incident.guard.push import PushUpdate, check_push, check_range, parse_push_input
from incident.guard.staged import check_staged, ensure_work_tree

__all__ = [
    "GuardFinding",
    "GuardResult",
    "HookAction",
    "HookChange",
    "PushUpdate",
    "check_push",
    "check_range",
    "check_staged",
    "ensure_work_tree",
    "install_hooks",
    "parse_push_input",
    "uninstall_hooks",
]
