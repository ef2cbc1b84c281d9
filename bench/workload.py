"""The bench's input: the district simulator's upstream traffic, published once and copied byte for byte.

Switching the source of events is one line: ``upstream`` below. Two workloads (``--workload``): ``street``, one
street (Hezhuang, deploy/district), the default so older results stay comparable; and ``city``, every street of
deploy/city (40 streets), the rate shared by grid weight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from itertools import islice
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from bench.config import STREET, Workload
from bench.context import Record
from bench.snapshot import REPO
from schemas.codec import Codec
from streams.kafka_admin import ensure_topics
from streams.kafka_io import producer, settle
from streams.reference_files import load_district
from streams.settings import TOPIC_SUFFIXES, Settings
from streams.simulator import profiles as p
from streams.simulator.config import ALL_STREETS, DEFAULT_RATE_PER_DAY, SimConfig
from streams.simulator.events import Delivery, SimEvent
from streams.simulator.generator import generate
from streams.simulator.publisher import encode
from streams.simulator.streets import street_weights

START = datetime(2026, 5, 1, tzinfo=timezone(timedelta(hours=8)))  # the seed report's period; in the past
MESSAGES_PER_ALARM = 4.0  # what the simulator's defaults give (alarm, field events, duplicates, drain)
SETTLE_EVERY = 5000


def upstream(n: int, rate_per_day: float, seed: int = 1, workload: Workload = STREET) -> Iterator[SimEvent]:
    """The first ``n`` messages of simulated upstream traffic (alarms and field events, with the simulator's
    re-deliveries, disorder and broken messages) from a fixed start, so every run publishes the same bytes."""
    # The hour-of-day profile makes any span's count vary: ask for three times the span, stop at n.
    days = 3 * n / (MESSAGES_PER_ALARM * rate_per_day) + 1
    config = SimConfig(seed=seed, start=START, days=days, rate_per_day=rate_per_day, street_code=workload.street)
    return islice(generate(config, load_district(REPO / "deploy" / workload.district)), n)


def describe_workload(workload: Workload, rate_per_day: float, partitions: Sequence[int]) -> dict[str, Any]:
    """The workload's size and daily volume, and how its alarms spread over the routing topic's partitions
    (keyed by street: one street is one partition, which bounds what adding agent processes can gain)."""
    district = load_district(REPO / "deploy" / workload.district)
    shares = street_weights(district) if workload.street == ALL_STREETS else {workload.street: 1.0}
    per_street = sorted(rate_per_day * s for s in shares.values())
    peak = max(p.HOUR_OF_DAY) * max(p.DAY_OF_WEEK)
    choose = DefaultPartitioner()
    spread: dict[str, list[float]] = {}
    for n in partitions:
        load = [0.0] * n
        for code, share in shares.items():
            load[choose(code.encode(), list(range(n)), list(range(n)))] += share
        spread[str(n)] = [round(x, 3) for x in load]
    per_alarm = messages_per_alarm(workload)
    return {
        "name": workload.name,
        "district_dir": f"deploy/{workload.district}",
        "streets": len(shares),
        "grids": sum(1 for g in district.grids if g.street_code in shares),
        "members": sum(1 for m in district.members if m.street_code in shares),
        "places": sum(1 for x in district.places if x.street_code in shares),
        "alarms_per_day": rate_per_day,
        "alarms_per_street_per_day": {
            "min": round(per_street[0], 1),
            "median": round(per_street[len(per_street) // 2], 1),
            "max": round(per_street[-1], 1),
        },
        "peak_alarms_per_s": round(rate_per_day / 86_400 * peak, 2),
        "messages_per_alarm": round(per_alarm, 2),
        "messages_per_day": round(rate_per_day * per_alarm),
        "routing_share_by_partition": spread,
        "note": f"a load-test rate: the seed report's Hezhuang has about {DEFAULT_RATE_PER_DAY} alarms a day"
        + ("; 38 of the 40 streets are synthetic (deploy/city/generate.py)" if workload.street == ALL_STREETS else ""),
    }


def messages_per_alarm(workload: Workload, alarms_per_day: float = 2000) -> float:
    """Messages the simulator publishes per alarm (field events, re-deliveries, broken ones), over one
    simulated day whose last cases are drained: the input's own prefix would undercount its last cases."""
    config = SimConfig(
        seed=1, start=START, days=1, drain_hours=6, rate_per_day=alarms_per_day, street_code=workload.street
    )
    alarms = messages = 0
    for e in generate(config, load_district(REPO / "deploy" / workload.district)):
        messages += 1
        alarms += e.type == "AlarmReceived" and e.delivery is Delivery.ORIGINAL
    return messages / alarms


def all_suffixes(codec: Codec) -> list[str]:
    return sorted({*TOPIC_SUFFIXES, *codec.registry.topics()})


async def create_topics(settings: Settings, codec: Codec, partitions: int) -> None:
    """Every topic of a deployment under ``settings.topic_prefix``, derived ones included, with their leaders
    elected (a producer sending to a partition without one only logs and retries)."""
    names = [settings.topic(s) for s in all_suffixes(codec)]
    await ensure_topics(settings.kafka_bootstrap, names, partitions)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        for _ in range(100):
            await consumer._client.force_metadata_update()
            cluster = consumer._client.cluster
            tps = [TopicPartition(n, p) for n in names for p in cluster.partitions_for_topic(n) or ()]
            if len(tps) == len(names) * partitions and all(cluster.leader_for_partition(tp) is not None for tp in tps):
                return
            await asyncio.sleep(0.1)
    finally:
        await consumer.stop()


async def group_state(settings: Settings, group: str) -> tuple[str, int]:
    """A consumer group's state (Stable, Empty, PreparingRebalance...) and how many members it has."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        response = (await admin.describe_consumer_groups([group]))[0].to_object()
    except KafkaError:  # no coordinator yet for a fresh group
        return "Unknown", 0
    finally:
        await admin.close()
    described = response["groups"][0]
    return str(described["state"]), len(described["members"])


async def publish(
    settings: Settings, codec: Codec, events: Iterator[SimEvent], on_progress: Callable[[int], None]
) -> int:
    """Encode with the project's codec and send with the project's producer; returns the messages sent."""
    kafka = producer(settings)
    await kafka.start()
    pending: list[asyncio.Future[object]] = []
    sent = 0
    try:
        for event in events:
            key, value = encode(codec, event)
            pending.append(await kafka.send(settings.topic(event.topic), value, key=key))
            if len(pending) >= SETTLE_EVERY:
                sent += await settle(pending, on_progress)
        sent += await settle(pending, on_progress)
    finally:
        await kafka.stop()
    return sent


async def assign_all(consumer: AIOKafkaConsumer, topics: Sequence[str]) -> list[TopicPartition]:
    await consumer._client.force_metadata_update()
    tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    return tps


async def fresh_copy(base: Settings, codec: Codec, records: Sequence[Record], prefix: str, partitions: int) -> int:
    """A deployment's topics under ``prefix``, the input among them holding a byte-for-byte copy of ``records``
    (same keys and partitions); returns how many were copied."""
    await create_topics(replace(base, topic_prefix=prefix), codec, partitions)
    return await copy(base, records, prefix)


async def copy(settings: Settings, records: Sequence[Record], target_prefix: str, by_key: bool = False) -> int:
    """The same bytes, keys and partitions under another prefix (the topics must exist). ``by_key``: the target
    has another partition count, so the producer's partitioner places each message by its key, as it did when
    the input was published."""
    kafka = producer(settings)
    await kafka.start()
    source_prefix = settings.topic_prefix + "."
    pending: list[asyncio.Future[object]] = []
    try:
        for r in records:
            topic = target_prefix + "." + r.topic.removeprefix(source_prefix)
            pending.append(await kafka.send(topic, r.value, key=r.key, partition=None if by_key else r.partition))
            if len(pending) >= SETTLE_EVERY:
                await settle(pending, lambda n: None)
        await settle(pending, lambda n: None)
    finally:
        await kafka.stop()
    return len(records)


def prefix_of(records: Sequence[Record], fraction: float) -> list[Record]:
    """The first ``fraction`` of every partition, in order: a smaller input with the same shape."""
    ends: dict[tuple[str, int], int] = {}
    for r in records:
        key = (r.topic, r.partition)
        ends[key] = max(ends.get(key, 0), r.offset + 1)
    return [r for r in records if r.offset < ends[(r.topic, r.partition)] * fraction]


async def delete_deployment(settings: Settings, prefix: str) -> None:
    """Drop a finished run's topics (its own prefix, and Faust's ``<app_id>-...`` changelogs), to spare the disk."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith((prefix + ".", prefix + "-"))]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


async def deployment_sizes(settings: Settings, prefix: str) -> dict[str, int]:
    """Messages in each topic of a deployment (its prefix and its ``<app_id>-...`` changelogs)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        names = [t for t in consumer._client.cluster.topics() if t.startswith((prefix + ".", prefix + "-"))]
        tps = [TopicPartition(t, p) for t in names for p in consumer.partitions_for_topic(t) or ()]
        ends = await consumer.end_offsets(tps) if tps else {}
    finally:
        await consumer.stop()
    sizes: dict[str, int] = {}
    for tp, end in ends.items():
        name = tp.topic.removeprefix(prefix).lstrip(".-")
        sizes[name] = sizes.get(name, 0) + end
    return dict(sorted(sizes.items()))
