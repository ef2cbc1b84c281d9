"""Topic provisioning and consumer lag, through aiokafka's admin and consumer clients."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from schemas.codec import HEADER_SIZE, MAGIC
from schemas.registry import SchemaRegistry
from streams.errors import BrokerError, BrokerUnavailable

_CLOCK_HEADERS = frozenset(MAGIC + s.fingerprint for s in SchemaRegistry.load() if s.name == "ClockTicked")
# The broker refuses upstream messages over 1 MiB; a dead-letter record wraps one whole, plus metadata.
DEADLETTER_MAX_BYTES = 4 * 1024 * 1024


def _topic_config(name: str) -> dict[str, str]:
    """Event topics keep everything (the tables are rebuilt by replaying them from offset 0);
    the internal topics only need to outlive an outage.

    The broker's clock stamps every record: the watermarks and the occurred_at check rely on one
    clock that only moves forward along a partition and is stored for replays."""
    if name.endswith("-changelog"):  # an engine table's changelog: the latest value per key is its state
        return {"cleanup.policy": "compact"}
    config = {"message.timestamp.type": "LogAppendTime"}
    if name.endswith((".routing", ".outcomes")):
        return {**config, "retention.ms": str(7 * 24 * 3600 * 1000)}
    config["retention.ms"] = "-1"
    if name.endswith(".deadletter"):
        config["max.message.bytes"] = str(DEADLETTER_MAX_BYTES)
    return config


async def ensure_topics(bootstrap: str, names: Sequence[str], partitions: int) -> list[str]:
    """Create the missing topics; returns the ones created now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            # A concurrent creator (another worker, a test) is fine: the topic exists either way.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(n, partitions, 1, topic_configs=_topic_config(n)) for n in missing])
        return missing
    except KafkaError as exc:
        raise BrokerError(f"cannot provision topics on {bootstrap}: {exc}") from exc
    finally:
        await admin.close()


async def require_broker(bootstrap: str) -> None:
    """Fail with one clear line, not a client traceback, when nothing answers at ``bootstrap``."""
    try:
        await list_topics(bootstrap)
    except (KafkaError, OSError) as exc:
        raise BrokerUnavailable(bootstrap) from exc


async def list_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5_000)
    try:
        await admin.start()
        return sorted(await admin.list_topics())
    finally:
        await admin.close()


@dataclass(frozen=True)
class PartitionLag:
    """How far a consumer group is behind on one partition, and how much of that is real work.

    The worker appends clock records (ticks and progress announcements) to its partitions every second,
    so an idle, caught-up worker is always a record or two behind the end: ``pending`` counts only the
    records that are not clock records (read when the lag is small enough to look at)."""

    group: str
    topic: str
    partition: int
    committed: int | None
    end: int
    pending: int = 0

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0)


PENDING_READ_MAX = 5_000  # beyond this many uncommitted records, pending is the lag (no point in reading them)


async def consumer_lag(bootstrap: str, group: str, topics: Sequence[str]) -> list[PartitionLag]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        await admin.start()
        await consumer.start()
        committed = await admin.list_consumer_group_offsets(group)
        tps = [
            TopicPartition(t, p)
            for t in topics
            for p in sorted(consumer.partitions_for_topic(t) or await _partitions(consumer, t))
        ]
        ends = await consumer.end_offsets(tps)
        starts = {tp: committed[tp].offset if tp in committed else None for tp in tps}
        pending = await _pending(consumer, {tp: (starts[tp] or 0, ends[tp]) for tp in tps})
        return [PartitionLag(group, tp.topic, tp.partition, starts[tp], ends[tp], pending[tp]) for tp in tps]
    except KafkaError as exc:
        raise BrokerError(f"cannot read lag from {bootstrap}: {exc}") from exc
    finally:
        await consumer.stop()
        await admin.close()


async def _pending(
    consumer: AIOKafkaConsumer, ranges: Mapping[TopicPartition, tuple[int, int]]
) -> dict[TopicPartition, int]:
    """Per partition, the records in [committed, end) that are not clock records."""
    pending = {tp: (b - a if b - a > PENDING_READ_MAX else 0) for tp, (a, b) in ranges.items()}
    to_read = {tp: r for tp, r in ranges.items() if 0 < r[1] - r[0] <= PENDING_READ_MAX}
    if not to_read:
        return pending
    consumer.assign(list(to_read))
    for tp, (start, _) in to_read.items():
        consumer.seek(tp, start)
    while to_read:
        batch = await consumer.getmany(*to_read, timeout_ms=1000)
        if not batch:
            break
        for tp, records in batch.items():
            end = to_read[tp][1]
            pending[tp] += sum(1 for r in records if r.offset < end and not is_clock_record(r.value))
            if records[-1].offset + 1 >= end:
                to_read.pop(tp, None)
    for tp in to_read:  # could not read them all in time: count what was not read as pending
        pending[tp] += 1
    return pending


def is_clock_record(value: bytes | None) -> bool:
    """A ClockTicked (a tick or a progress announcement): recognised by its schema fingerprint, not decoded."""
    return value is not None and value[:HEADER_SIZE] in _CLOCK_HEADERS


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


async def groups_lag(bootstrap: str, groups: Mapping[str, Sequence[str]]) -> list[PartitionLag]:
    return [lag for group, topics in groups.items() for lag in await consumer_lag(bootstrap, group, topics)]


async def wait_caught_up(bootstrap: str, groups: Mapping[str, Sequence[str]], timeout: float) -> list[PartitionLag]:
    """Block until no group has a pending record (anything but clock records) on any partition, at two looks in a
    row, or raise after ``timeout`` seconds.

    Two clean looks, because a look reads the partitions one after the other: an output appended to one
    already read, by a batch still in flight on another, shows up in the second look. A clean look means
    the derived events are in too: agents publish what a message caused before they commit it.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    problem = "no answer yet"
    clean = 0
    while asyncio.get_running_loop().time() < deadline:
        try:
            lags = await groups_lag(bootstrap, groups)
        except BrokerError as exc:  # a fresh broker has no group coordinator for a few seconds
            problem, clean = str(exc), 0
        else:
            if all(x.pending == 0 for x in lags):
                clean += 1
                if clean == 2:
                    return lags
                await asyncio.sleep(0.2)
                continue
            clean = 0
            behind = ", ".join(f"{x.group}:{x.topic}[{x.partition}] {x.committed}/{x.end}" for x in lags if x.pending)
            problem = f"still {sum(x.pending for x in lags)} records pending ({behind})"
        await asyncio.sleep(0.5)
    raise BrokerError(f"the worker did not catch up within {timeout:.0f}s: {problem}")


async def reset_offsets(bootstrap: str, group: str, topics: Sequence[str]) -> int:
    """Point ``group`` at offset 0 of every partition, for a replay; the group must be idle."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        await consumer.start()
        tps = [TopicPartition(t, p) for t in topics for p in sorted(await _partitions(consumer, t))]
        consumer.assign(tps)
        await consumer.commit({tp: 0 for tp in tps})
        return len(tps)
    except KafkaError as exc:
        raise BrokerError(f"cannot reset {group} on {bootstrap} (is a worker still running?): {exc}") from exc
    finally:
        await consumer.stop()
