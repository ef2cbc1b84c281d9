"""``python -m bench.cluster_sizing --db /tmp/x [--days 7] [--rate 5.9]``: what one street puts into ClickHouse.

No broker: the simulator's street (streams.simulator) runs through the pure topology (chaos.model) for the
derived events; every record the projector would consume (the upstream messages, broken ones included, and
what the agents publish to case-events, sla-breaches, outcome-stats, hotspots and the dead letters) is built
as an in-memory Kafka message, one partition per topic with offsets in order, and handed to the projector
itself (streams.projector.Projector on a ClickHouseSink) over an embedded database at ``--db``. Then it reads
``system.parts``, once as written and once after OPTIMIZE ... FINAL (the merged steady state), and prints
JSON: messages by topic, and per table rows and bytes on disk, also per simulated day.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chaos.model import Model
from projections.client import connect
from projections.migrate import migrate
from projections.rows import PROJECTIONS
from projections.sink import ClickHouseSink
from schemas.codec import Codec
from schemas.event import Event
from schemas.privacy import Redactor
from schemas.validation import Limits
from streams.domain.sla import SlaTiming
from streams.ingest import Message
from streams.projector import Projector
from streams.reference_files import load_district, load_hotspot_policy
from streams.simulator.config import DEFAULT_RATE_PER_DAY, SimConfig
from streams.simulator.events import Delivery, SimEvent
from streams.simulator.generator import generate
from streams.simulator.publisher import encode

PREFIX = "alarmflow"
START = datetime(2026, 5, 1, 16, 0, tzinfo=UTC)  # midnight in Hezhuang
BATCH = 1000
TABLES = [p.spec.name for p in PROJECTIONS]


class Collected:
    """The projector's dead-letter publisher: keeps what it would have sent."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def publish(self, topic: str, events: Sequence[Event]) -> None:
        self.events.extend(events)


def messages(codec: Codec, sim: list[SimEvent]) -> tuple[list[Message], list[Event]]:
    """Every record the projector reads, but its own dead letters (they follow from these)."""
    valid = [e for e in sim if e.delivery is not Delivery.MALFORMED]
    published = [(codec.from_json(e.value), e.published_at) for e in valid]  # type: ignore[arg-type]
    last = max(at for _, at in published)
    # Ticks a minute apart, not a second: the decisions are the same, only decided up to a minute later.
    tick = timedelta(minutes=1)
    model = Model(load_district(), SlaTiming(), load_hotspot_policy(), frozenset({"RESOLVED"}), tick=tick)
    decisions = model.live(published, until=last + timedelta(hours=12))
    raw: dict[str, list[tuple[datetime, bytes | None, bytes]]] = {}
    for e in sim:  # upstream as published; the model keeps case-events' own, so alarms and broken ones here
        if e.topic == "alarms" or e.delivery is Delivery.MALFORMED:
            key, value = encode(codec, e)
            raw.setdefault(e.topic, []).append((e.published_at, key, value))
    for topic, events in decisions.published.items():
        for event in events:
            raw.setdefault(topic, []).append((event.occurred_at, codec.key_of(event).encode(), codec.encode(event)))
    out = []
    for topic, records in raw.items():
        records.sort(key=lambda r: r[0])
        out += [Message(f"{PREFIX}.{topic}", 0, i, k, v, at) for i, (at, k, v) in enumerate(records)]
    return out, decisions.dead_letters()


async def project(projector: Projector, batch: list[Message], inserted: dict[str, int]) -> None:
    """Batches of one topic, as the projector's consumer hands them over; counts the rows each table took."""
    for topic in sorted({m.topic for m in batch}):
        part = [m for m in batch if m.topic == topic]
        for i in range(0, len(part), BATCH):
            report = await projector.handle(part[i : i + BATCH])
            for table, n in report.by_table.items():
                inserted[table] = inserted.get(table, 0) + n


def parts(client: Any) -> dict[str, dict[str, int]]:
    result = client.query(
        "SELECT table, sum(rows), sum(bytes_on_disk), sum(data_compressed_bytes), sum(data_uncompressed_bytes), "
        "count() FROM system.parts WHERE active AND database = currentDatabase() AND table IN {t:Array(String)} "
        "GROUP BY table ORDER BY table",
        parameters={"t": TABLES},
    )
    names = ("rows", "bytes_on_disk", "compressed", "uncompressed", "parts")
    return {r[0]: dict(zip(names, map(int, r[1:]), strict=True)) for r in result.result_rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="an empty directory for the embedded database")
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE_PER_DAY, help="alarms a day")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    codec = Codec()
    config = SimConfig(seed=args.seed, start=START, days=args.days, drain_hours=3.0, rate_per_day=args.rate)
    sim = list(generate(config, load_district()))
    inbound, model_dead = messages(codec, sim)
    client = connect(f"chdb://{args.db.resolve()}")
    migrate(client)
    publisher = Collected()
    redactor = Redactor(b"sizing-only-key-0123456789")
    projector = Projector(codec, Limits(), redactor, ClickHouseSink(client), publisher, f"{PREFIX}.deadletter")
    inserted: dict[str, int] = {}
    asyncio.run(project(projector, inbound, inserted))
    dead = [*model_dead, *publisher.events]
    letters = [
        Message(f"{PREFIX}.deadletter", 0, i, codec.key_of(e).encode(), codec.encode(e), e.occurred_at)
        for i, e in enumerate(dead)
    ]
    asyncio.run(project(projector, letters, inserted))
    written = parts(client)
    for table in TABLES:
        client.command(f"OPTIMIZE TABLE {table} FINAL")
    merged = parts(client)
    by_topic: dict[str, int] = {}
    for m in [*inbound, *letters]:
        by_topic[m.topic] = by_topic.get(m.topic, 0) + 1
    alarms = sum(1 for e in sim if e.type == "AlarmReceived" and e.delivery is Delivery.ORIGINAL)
    print(
        json.dumps(
            {
                "days": args.days,
                "rate_per_day": args.rate,
                "seed": args.seed,
                "alarms": alarms,
                "messages_by_topic": by_topic,
                "messages": sum(by_topic.values()),
                "inserted": dict(sorted(inserted.items())),
                "written": written,
                "merged": merged,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
