"""raw: a bare aiokafka getmany() + fastavro decode loop over the input topic, the Python upper bound.

Bare: the writer schema is looked up by fingerprint and the body read with schemaless_reader; no schema
resolution, no contract checks, no Event. Messages that are not Avro (the simulator's broken ones) are counted
and skipped.
"""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

from aiokafka import AIOKafkaConsumer
from fastavro import schemaless_reader

from bench.context import Context, Record
from bench.stats import headline, summary
from bench.workload import assign_all
from schemas.codec import HEADER_SIZE, MAGIC


def parsed_by_fingerprint(ctx: Context) -> dict[bytes, Any]:
    return {fp: schema.parsed for fp, schema in ctx.codec.registry.by_fingerprint.items()}


def bare_decode(data: bytes, schemas: dict[bytes, Any]) -> Any:
    """The least a Python consumer must do with one single-object-encoded message."""
    if data[:2] != MAGIC:
        raise ValueError("not Avro single-object encoding")
    body = io.BytesIO(data)
    body.seek(HEADER_SIZE)
    return schemaless_reader(body, schemas[data[2:HEADER_SIZE]], None)


async def one_pass(ctx: Context, keep: bool) -> tuple[int, int, float, list[Record]]:
    """(messages, undecodable, seconds, records if ``keep``) for one pass from offset 0 to the end."""
    schemas = parsed_by_fingerprint(ctx)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=ctx.base.kafka_bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=4 << 20
    )
    await consumer.start()
    kept: list[Record] = []
    count = bad = 0
    try:
        tps = await assign_all(consumer, ctx.input_topics())
        ends = await consumer.end_offsets(tps)
        remaining = sum(ends.values())
        start = time.perf_counter()
        while count < remaining:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batch.values():
                for r in records:
                    value = r.value or b""
                    try:
                        bare_decode(value, schemas)
                    except Exception:  # noqa: BLE001 - broken input is part of the topic; count it
                        bad += 1
                    if keep:
                        kept.append(Record(r.topic, r.partition, r.offset, r.key, value))
                count += len(records)
        elapsed = time.perf_counter() - start
    finally:
        await consumer.stop()
    return count, bad, elapsed, kept


def run(ctx: Context) -> dict[str, Any]:
    # Warm-up pass (unmeasured): fills the broker's page cache and keeps the records for the other figures.
    n, bad, _, ctx.records = asyncio.run(one_pass(ctx, keep=True))
    rates = []
    for i in range(ctx.sizes.repetitions):
        count, _, elapsed, _ = asyncio.run(one_pass(ctx, keep=False))
        rates.append(count / elapsed)
        ctx.log(f"raw {i + 1}/{ctx.sizes.repetitions}: {count} messages in {elapsed:.2f}s")
    throughput = summary(rates, 0)
    return {
        "what": "aiokafka getmany(max_records=10000) + fastavro schemaless_reader over the input topic, from offset 0",
        "messages": n,
        "undecodable": bad,
        "throughput": throughput,
        "headline": headline("raw", "events/s", throughput),
    }
