"""The broker a run talks to: in --quick mode the one the environment names, if it answers; otherwise its own.

Its own broker runs on ``ALARMFLOW_KAFKA_BOOTSTRAP`` / ``ALARMFLOW_KAFKA_CONTROLLER_PORT`` / ``ALARMFLOW_KAFKA_HOME``
or the bench's defaults (49092, 49093, var/bench-kafka), through streams.kafka_local, and it is always stopped
(and purged) at the end, also on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.workers import shielded
from streams import kafka_local
from streams.errors import BrokerError
from streams.kafka_admin import list_topics
from streams.settings import Settings

DEFAULT_BOOTSTRAP = "127.0.0.1:49092"
DEFAULT_CONTROLLER_PORT = "49093"
DEFAULT_HOME = "var/bench-kafka"


@dataclass(frozen=True)
class Broker:
    settings: Settings
    own: bool  # started (and stopped) by this run


def bench_settings() -> Settings:
    env = dict(os.environ)
    env.setdefault("ALARMFLOW_KAFKA_BOOTSTRAP", DEFAULT_BOOTSTRAP)
    env.setdefault("ALARMFLOW_KAFKA_CONTROLLER_PORT", DEFAULT_CONTROLLER_PORT)
    env.setdefault("ALARMFLOW_KAFKA_HOME", DEFAULT_HOME)
    return Settings.from_env(env, kafka_home=Path(env["ALARMFLOW_KAFKA_HOME"]))


def answers(bootstrap: str) -> bool:
    try:
        asyncio.run(list_topics(bootstrap))
    except Exception:  # noqa: BLE001 - any failure means no usable broker there
        return False
    return True


def _up(settings: Settings, attempts: int = 3) -> None:
    """Start the broker; 49092/49093 lie in Linux's ephemeral port range, so a client socket may hold one for a
    moment and the bind fails: stop, wait, try again."""
    for attempt in range(1, attempts + 1):
        try:
            kafka_local.up(settings)
            return
        except BrokerError:
            kafka_local.down(settings)
            if attempt == attempts:
                raise
            time.sleep(5 * attempt)


@contextmanager
def broker(quick: bool) -> Iterator[Broker]:
    settings = bench_settings()
    if quick and "ALARMFLOW_KAFKA_BOOTSTRAP" in os.environ and answers(settings.kafka_bootstrap):
        yield Broker(settings, own=False)
        return
    try:
        _up(settings)
        yield Broker(settings, own=True)
    finally:
        with shielded():
            kafka_local.down(settings, purge=True)
