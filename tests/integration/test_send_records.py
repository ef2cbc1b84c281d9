"""faust_ext.Producer.send_records on the real broker: the partition a key gets is the one aiokafka's own send
gives it, each partition keeps the records' order, and the offsets returned are where the records are."""

from __future__ import annotations

import asyncio
import uuid

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams import faust_ext
from streams.kafka_admin import ensure_topics


async def _round_trip(bootstrap: str) -> None:
    topic = f"sendrecords-{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [topic], 4)
    broker = f"{faust_ext.SCHEME}://{bootstrap}"
    app = faust.App(f"sr-{uuid.uuid4().hex[:6]}", broker=broker, producer_max_batch_size=4096)
    producer = faust_ext.producer_of(app)
    await producer.start()
    plain = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await plain.start()
    try:
        records = [
            faust_ext.Outgoing(topic, f"case-{i % 37}".encode(), f"v{i}".encode() * (1 + i % 50), None, [("h", b"1")])
            for i in range(3000)  # many batches of 4 KiB per partition
        ]
        records.append(faust_ext.Outgoing(topic, b"pinned", b"to partition 2", 2))
        sent = await producer.send_records(records)
        expected = {}
        for key in {r.key for r in records if r.partition is None}:
            meta = await (await plain.send(topic, b"probe", key=key))  # where aiokafka's own send puts the key
            expected[key] = meta.partition
    finally:
        await plain.stop()
        await producer.stop()
    assert [r for r, _, _ in sent] == records
    assert all(tp.partition == expected[r.key] for r, tp, _ in sent if r.partition is None)
    assert sent[-1][1].partition == 2

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(4)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        stored: dict[tuple[int, int], tuple[bytes | None, bytes | None, list]] = {}
        while sum(1 for _ in stored) < sum(ends.values()):
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                for m in batch:
                    stored[(m.partition, m.offset)] = (m.key, m.value, list(m.headers))
    finally:
        await consumer.stop()
    for record, tp, offset in sent:
        key, value, headers = stored[(tp.partition, offset)]
        assert (key, value) == (record.key, record.value) and headers == list(record.headers)


def test_send_records_partitions_orders_and_locates_like_send(broker: str) -> None:
    asyncio.run(_round_trip(broker))
