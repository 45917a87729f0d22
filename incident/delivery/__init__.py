"""Where a new key goes: file, env-file, AWS Secrets Manager, exec; never lost."""

from incident.delivery.deliver import DeliveryOutcome, deliver_secret
from incident.delivery.targets import (
    AwsSecretsManagerTarget,
    DeliveryError,
    EnvFileTarget,
    ExecTarget,
    FileTarget,
    Target,
    anchor_target,
    parse_target,
    read_env_variable,
    set_env_variable,
)

__all__ = [
    "AwsSecretsManagerTarget",
    "DeliveryError",
    "DeliveryOutcome",
    "EnvFileTarget",
    "ExecTarget",
    "FileTarget",
    "Target",
    "anchor_target",
    "deliver_secret",
    "parse_target",
    "read_env_variable",
    "set_env_variable",
]
