"""A live offered load at a fixed rate, with two kinds of probes.

The load's content comes from the district simulator (its mix of alarms, field events, re-deliveries and broken
messages); each message is re-stamped ``occurred_at = now`` as it is sent, so simulated hours play in seconds
at the chosen rate. Probes:
- row probes: every k-th original message; acknowledged by the broker (``published``) → its row is queryable;
- SLA probes: non-police alarms (renovation noise at a gazetteer compound, so they are dispatched) whose
  acceptance never comes; their ACCEPT breach is compared with the deadline.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.config import STREET, Workload
from bench.workload import upstream
from schemas.codec import Codec
from streams.settings import Settings
from streams.simulator.events import Delivery, SimEvent
from streams.simulator.publisher import encode

PROBE_NAMESPACE = uuid.UUID("0c6f2d8e-5b1a-4f3e-9d7c-2a8b4e6f1c3d")
PROBE_LOCATION = {"address": "云上澜苑 3幢", "lat": None, "lon": None, "street_code": "330114005", "grid_code": None}


@dataclass
class Probes:
    row_acked: dict[str, float] = field(default_factory=dict)  # event_id -> broker ack (wall clock, s)
    row_seen: dict[str, float] = field(default_factory=dict)  # event_id -> first seen in the events table
    sla: set[str] = field(default_factory=set)  # case ids of never-accepted alarms
    sent: int = 0


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Load:
    """Sends the simulator's messages at ``rate`` per second, re-stamped to the wall clock."""

    def __init__(
        self,
        settings: Settings,
        codec: Codec,
        kafka: AIOKafkaProducer,
        rate: float,
        tag: str,
        workload: Workload = STREET,
    ) -> None:
        self.settings, self.codec, self.kafka, self.rate, self.tag = settings, codec, kafka, rate, tag
        self.source: Iterator[SimEvent] = upstream(10_000_000, rate_per_day=100_000, seed=2, workload=workload)
        self.template = next(e.value for e in self.source if e.type == "AlarmReceived" and isinstance(e.value, dict))
        self.row_every = max(1, int(rate / 20))  # about 20 row probes a second
        self.probe_seq = 0

    async def offer(self, seconds: float, probes: Probes, sla_until: float, sla_every: float) -> None:
        """``seconds`` of load; SLA probes every ``sla_every`` s during the first ``sla_until`` s."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        next_sla, sent = start, 0
        while (now := loop.time()) < start + seconds:
            while sent < int((now - start) * self.rate):
                await self._send(next(self.source), probes, sent % self.row_every == 0)
                sent += 1
            if now - start < sla_until and now >= next_sla:
                await self._send_sla_probe(probes)
                next_sla += sla_every
            await asyncio.sleep(0.005)
        probes.sent += sent

    async def _send(self, event: SimEvent, probes: Probes, probe: bool) -> None:
        if isinstance(event.value, dict) and event.delivery is not Delivery.MALFORMED:
            event = SimEvent(
                event.publish_ms,
                event.occurred_ms,
                event.topic,
                event.key,
                event.type,
                {**event.value, "occurred_at": _now_iso()},
                event.delivery,
            )
        key, value = encode(self.codec, event)
        future = await self.kafka.send(self.settings.topic(event.topic), value, key=key)
        if probe and event.delivery is Delivery.ORIGINAL and isinstance(event.value, dict):
            event_id = str(event.value["event_id"])
            future.add_done_callback(lambda f: f.exception() or probes.row_acked.setdefault(event_id, time.time()))

    async def _send_sla_probe(self, probes: Probes) -> None:
        self.probe_seq += 1
        case_id = f"PROBE-{self.tag}-{self.probe_seq:05d}"
        alarm = {
            **self.template,
            "event_id": str(uuid.uuid5(PROBE_NAMESPACE, case_id)),
            "alarm_id": case_id,
            "occurred_at": _now_iso(),
            "category": "noise.renovation",
            "police_matter": "NON_POLICE",
            "channel": "CALL_110",
            "priority": 3,
            "location": PROBE_LOCATION,
            "description": "bench SLA probe: never accepted",
        }
        event = self.codec.from_json(alarm)
        await self.kafka.send(self.settings.topic("alarms"), self.codec.encode(event), key=case_id.encode())
        probes.sla.add(case_id)


def breach_latencies(codec: Codec, messages: list[Any], cases: set[str]) -> dict[str, float]:
    """case id -> ms from the ACCEPT deadline to the SlaBreached record's broker (append) time."""
    out: dict[str, float] = {}
    for m in messages:
        fields = codec.decode(m.value).fields
        if fields["case_id"] in cases and fields["stage"] == "ACCEPT":
            out.setdefault(fields["case_id"], (m.timestamp - fields["deadline"]).total_seconds() * 1000)
    return out
