"""Records that hold a secret value and know what kind of credential it is."""

from __future__ import annotations

from incident.detect.rules import KeyKind, Mode, classify
from incident.redact import SecretView


class ClassifiedSecret(SecretView):
    """A SecretView whose kind and mode are read off the secret's prefix."""

    @property
    def kind(self) -> KeyKind:
        return classify(self.secret)[0]

    @property
    def mode(self) -> Mode:
        return classify(self.secret)[1]
