"""Loopback ports for the processes alarmflow starts itself (the demo, the tests, the bench, the fault suite)."""

from __future__ import annotations

import random
import socket
from pathlib import Path

# Ports this process has handed out. A port is free when picked but only taken when the child binds it, and the
# system may pick a just-released port again: two picks in a row (a worker's web port and its ClickHouse interface)
# could be the same number, and the second server then fails to bind while the first answers its clients.
_handed_out: set[int] = set()
_LOWEST = 10_000


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32_768, 60_999  # Linux's default


def _candidates(preferred: int) -> list[int]:
    """``preferred`` first, then random ports below the range the system gives outgoing connections (a Kafka client
    of some process could otherwise take a picked port before the server meant for it binds), then system picks."""
    low, _ = _ephemeral_range()
    below = random.sample(range(_LOWEST, low), 64) if low - _LOWEST > 64 else []
    return [*([preferred] if preferred else []), *below, *([0] * 16)]


def free_port(preferred: int = 0) -> int:
    """``preferred`` if nothing listens on it on 127.0.0.1, else another free port (0: always another); never one
    this process handed out before."""
    for wanted in _candidates(preferred):
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
