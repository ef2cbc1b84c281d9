"""What every figure of a run shares: sizes, the broker, directories, the input topic and earlier results."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.config import STREET, Sizes, Workload
from schemas.codec import Codec
from streams.settings import Settings

INPUT_TOPICS = ("alarms", "case-events")


@dataclass(frozen=True, slots=True)
class Record:
    """One message of the input topic as read back from the broker."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass
class Context:
    sizes: Sizes
    quick: bool
    base: Settings  # broker settings; topic_prefix is the pre-published input's prefix
    run_dir: Path  # scratch: databases, logs, district copies
    code_dir: Path  # the code snapshot subprocesses run
    console: Console
    codec: Codec = field(default_factory=Codec)
    phone_key: str = field(default_factory=lambda: secrets.token_hex(16))
    records: list[Record] = field(default_factory=list)  # the input topic, read once
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    workload: Workload = STREET

    def log(self, text: str) -> None:
        self.console.log(text)

    @property
    def district_dir(self) -> Path:
        """The workload's district in the code snapshot: every worker of the run loads it."""
        return self.code_dir / "deploy" / self.workload.district

    def input_topics(self) -> list[str]:
        return [self.base.topic(t) for t in INPUT_TOPICS]
