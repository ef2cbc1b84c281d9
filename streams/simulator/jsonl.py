"""JSONL mode: the run as a file in the contract's JSON form, one message a line, for ``alarmflow publish``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from streams.domain.district import District
from streams.simulator.config import SimConfig
from streams.simulator.events import SimEvent, Summary, Tally
from streams.simulator.generator import generate
from streams.simulator.progress import Progress, SpanProgress

# Every character str.splitlines() breaks at, escaped, so a broken message stays on its own line for any reader.
_LINE_BREAKS = {ord(c): repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


def to_line(event: SimEvent) -> str:
    """The JSON form on one line; a broken message's raw bytes as text that is not JSON (never a line break)."""
    if isinstance(event.value, bytes):
        return event.value.decode("utf-8", "backslashreplace").translate(_LINE_BREAKS) or "\\x00"
    return json.dumps(event.value, ensure_ascii=False)


def write_jsonl(
    path: Path, config: SimConfig, district: District, progress: Progress | None = None, now: datetime | None = None
) -> Summary:
    """Write the run to ``path``; with no ``config.start`` the run ends at ``now`` (default: the clock)."""
    config = config.resolved(now or datetime.now(UTC))
    tally = Tally()
    tracker = SpanProgress(config, progress)
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for event in generate(config, district):
            out.write(to_line(event) + "\n")
            tally.add(event)
            tracker.step(event, tally.count)
    tracker.done(tally.count)
    return tally.summary()
