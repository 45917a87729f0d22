"""`incident sandbox` on a busy port: a clear error, not an internal one."""

from __future__ import annotations

import socket

from tests.cli.helpers import invoke


def test_a_busy_port_is_a_usage_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        result = invoke("sandbox", "--port", str(port), exit_code=2)

    assert "--port 0" in result.stderr
