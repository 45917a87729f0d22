"""Purge: rewrite history without the leaked keys, prove it clean, push it back.

The only package that imports ``git_filter_repo`` (in incident.rewrite.history).
Public API for commands (``purge``, ``respond``): purge_repository with
PurgeOptions, returning a PurgeResult; rewrite_history for a plain list of secrets.
"""

from incident.rewrite.encodings import DEFAULT_MARKER, SecretReplacer, encoded_needles
from incident.rewrite.history import (
    RefChange,
    RemovedFile,
    RewriteOptions,
    RewriteResult,
    rewrite_history,
)
from incident.rewrite.nextsteps import NextStep
from incident.rewrite.purge import (
    PurgedKey,
    PurgeOptions,
    PurgeResult,
    PurgeVerificationError,
    purge_repository,
)
from incident.rewrite.push import PushOutcome
from incident.rewrite.verify import Remnant, VerifyResult, verify_clean

__all__ = [
    "DEFAULT_MARKER",
    "NextStep",
    "PurgeOptions",
    "PurgeResult",
    "PurgeVerificationError",
    "PurgedKey",
    "PushOutcome",
    "RefChange",
    "Remnant",
    "RemovedFile",
    "RewriteOptions",
    "RewriteResult",
    "SecretReplacer",
    "VerifyResult",
    "encoded_needles",
    "purge_repository",
    "rewrite_history",
    "verify_clean",
]
