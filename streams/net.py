"""Loopback ports for the processes alarmflow starts itself (the demo, the tests, the bench, the fault suite)."""

from __future__ import annotations

import socket

# Ports this process has handed out. A port is free when picked but only taken when the child binds it, and the
# system may pick a just-released port again: two picks in a row (a worker's web port and its ClickHouse interface)
# could be the same number, and the second server then fails to bind while the first answers its clients.
_handed_out: set[int] = set()


def free_port(preferred: int = 0) -> int:
    """``preferred`` if nothing listens on it on 127.0.0.1, else a port the system picks (0: always that); never one
    this process handed out before."""
    for wanted in (preferred, *([0] * 64)):
        if wanted in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", wanted))
            except OSError:
                continue
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise OSError("no free port on 127.0.0.1")
