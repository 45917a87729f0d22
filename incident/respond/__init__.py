"""``incident respond``: the whole response, step by step, resumable."""

from incident.respond.runner import (
    Responder,
    RespondOptions,
    RespondResult,
    RespondStopped,
    StepOutcome,
    Ui,
    open_manual_steps,
)

__all__ = [
    "RespondOptions",
    "RespondResult",
    "RespondStopped",
    "Responder",
    "StepOutcome",
    "Ui",
    "open_manual_steps",
]
