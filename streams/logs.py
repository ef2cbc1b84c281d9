"""Log lines that repeat: the first of each kind in a window goes out, the rest are counted and summarised.

A broker outage makes every Kafka client in the worker log each failed connection, metadata refresh, fetch
and heartbeat, thousands of lines a minute, all saying the same. Ops need to see that it happened, when,
and that it stopped, not every retry: one line per kind of message per window, the next one saying how
many were held back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

WINDOW_S = 30.0


class RepeatFilter(logging.Filter):
    """Let through the first WARNING-or-worse record of each (logger, level, message template) per window."""

    def __init__(self, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_s, self.clock = window_s, clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        opened, held_back = self._seen.get(key, (float("-inf"), 0))
        if now - opened < self.window_s:
            self._seen[key] = (opened, held_back + 1)
            return False
        self._seen[key] = (now, 0)
        if held_back:
            record.msg = f"{record.getMessage()} [{held_back} more like this in the {self.window_s:.0f} s before]"
            record.args = ()
        return True


def set_levels(level: str) -> None:
    """The level asked for, on the root logger and on Faust's, mode's and aiokafka's, which Faust's worker leaves at
    DEBUG whatever it was given (so every debug call builds a record)."""
    value = logging.getLevelName(level.upper())
    for name in ("", "faust", "mode", "aiokafka"):
        logging.getLogger(name).setLevel(value)


def install(filter_: logging.Filter | None = None) -> logging.Filter:
    """Add the filter to every handler of the root logger (where every library's records end up)."""
    filter_ = filter_ or RepeatFilter()
    for handler in logging.getLogger().handlers:
        if filter_ not in handler.filters:
            handler.addFilter(filter_)
    return filter_
