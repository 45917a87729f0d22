"""Run ``incident ARGS`` and die like ``kill -9`` at one journal event.

    python -m tests.respond.crash_run after|before STEP/EVENT N -- ARGS...

``after``: the Nth matching event is written and fsynced, then the process exits
at once. ``before``: it exits instead of writing it, so the work the event would
record (a rotation Stripe applied, a ref the remote took) is done but unrecorded.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from incident.journal import Journal

CRASH_EXIT = 137


def main() -> None:
    when, target, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
    args = sys.argv[sys.argv.index("--") + 1:]
    step, _, event = target.partition("/")
    original = Journal.append
    seen = 0

    def append(self: Journal, step_: str, event_: str, actor: str | None = None,
               **data: Any) -> Any:
        nonlocal seen
        if step_ == step and event_ == event:
            seen += 1
            if seen == nth and when == "before":
                os._exit(CRASH_EXIT)
        entry = original(self, step_, event_, actor, **data)
        if step_ == step and event_ == event and seen == nth and when == "after":
            os._exit(CRASH_EXIT)
        return entry

    Journal.append = append  # type: ignore[method-assign]
    from incident.cli import main as cli_main

    cli_main(args)


if __name__ == "__main__":
    main()
