"""Loopback ports for the processes alarmflow starts itself (the demo, the tests, the bench, the fault suite)."""

from __future__ import annotations

import socket


def free_port(preferred: int = 0) -> int:
    """``preferred`` if nothing listens on it on 127.0.0.1, else a port the system picks (0: always that)."""
    for wanted in dict.fromkeys((preferred, 0)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", wanted))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise OSError("no free port on 127.0.0.1")
