"""floor: the least CPU an input event can cost in this topology, from bare clients, in the same run.

Per input event, the design moves ``reads`` messages (every topic the agents and the projector consume),
``writes`` messages (outputs, internal hops and changelogs) and ``rows`` ClickHouse rows, and runs the domain.
Each part is measured here in this process's CPU time (``time.process_time``, every thread):

- consume + decode: a bare aiokafka ``getmany`` + fastavro pass over the input topic (``raw.one_pass``);
- produce: aiokafka's batch API (``create_batch`` / ``send_batch`` per partition, acks=all) of input values;
- insert: ``insert_arrow`` of pre-built Arrow batches of events-table rows into the embedded engine;
- domain: every engine on the pure topology (``chaos.model``) fed the worker figure's input, in time order.

Beside the floor, the figure prices what the agents' reads cost through Faust: ``bench.bare_agent`` runs the
worker's Faust app with agents that take batches as the worker's do and do nothing with them, over the input
topics. Its CPU per message times the agents' reads per input is what any design built on Faust agents spends
before doing anything (``framework``); ``faust_design_floor_us`` is the floor with the agents' reads priced so.

``reads``, ``writes`` come from the worker figure's topic sizes; ``rows`` from the model's outputs (each event
times the projections that take it). floor = reads × consume + writes × produce + rows × insert + domain, and the
worker's CPU per input is reported against it. The model flushes state after every record (a batch of one), so
its domain figure is an upper bound of what the worker's batches spend in the domain.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from bench.context import Context, Record
from bench.figures import raw
from bench.figures.sink import event_rows
from bench.stats import headline, summary
from bench.workers import worker_env
from bench.workload import prefix_of
from chaos.model import Model
from projections.client import connect
from projections.migrate import migrate
from projections.rows import projections_for
from projections.tables import EVENTS, Rows
from schemas.errors import PoisonInput
from schemas.event import Event
from streams.agents.wiring import timing_from
from streams.kafka_admin import ensure_topics
from streams.reference_files import load_district, load_hotspot_policy
from streams.settings import AGENT_TOPICS, PROJECTED_TOPICS, Settings

TARGET_RATIO = 2.0  # worker CPU per input / floor
TARGET_US = 600.0  # worker CPU per input, µs
PRODUCE_BATCH_BYTES = 1 << 20


def _cpu(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.process_time()
    result = fn()
    return result, time.process_time() - start


async def _produce(settings: Settings, topic: str, values: list[bytes], partitions: int) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", max_batch_size=PRODUCE_BATCH_BYTES, linger_ms=5
    )
    await producer.start()
    try:
        choose, all_partitions = DefaultPartitioner(), list(range(partitions))
        by_partition: dict[int, list[bytes]] = {}
        for i, value in enumerate(values):
            key = str(i).encode()
            by_partition.setdefault(choose(key, all_partitions, all_partitions), []).append(value)
        futures = []
        for partition, chunk in by_partition.items():
            batch = producer.create_batch()
            for i, value in enumerate(chunk):
                if batch.append(key=str(i).encode(), value=value, timestamp=None) is None:
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=str(i).encode(), value=value, timestamp=None)
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _faust_read_us(ctx: Context, messages: int) -> float:
    """µs of CPU per message through a bare Faust agent (``bench.bare_agent``) over the input topics."""
    out = ctx.run_dir / "bare-agent" / "result.json"
    env = worker_env(
        ctx,
        ctx.base.topic_prefix,
        f"{ctx.base.topic_prefix}-bare",
        out.parent,
        BENCH_BARE_MESSAGES=str(messages),
        BENCH_BARE_OUT=str(out),
    )
    done = subprocess.run(
        [sys.executable, "-m", "bench.bare_agent", "worker"],
        cwd=ctx.code_dir,
        env=env,
        capture_output=True,
        timeout=messages / 200 + 300,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if not out.exists():
        raise RuntimeError(f"bench.bare_agent exited {done.returncode}: {done.stderr.decode(errors='replace')[-2000:]}")
    result = json.loads(out.read_text())
    ctx.log(
        f"bare Faust agent: {result['messages']} messages, {result['cpu_s'] / result['messages'] * 1e6:.0f} µs each"
    )
    return float(result["cpu_s"]) / result["messages"] * 1e6


def _framework(faust_us: float, agent_reads: float, bare_us: float, floor_us: float) -> dict[str, float]:
    return {
        "faust_agent_read_per_msg_us": round(faust_us, 1),
        "bare_read_per_msg_us": round(bare_us, 1),
        "agent_reads_per_input": round(agent_reads, 2),
        "faust_reads_us_per_input": round(agent_reads * faust_us, 1),
        "faust_design_floor_us": round(floor_us + agent_reads * (faust_us - bare_us), 1),
    }


def _decoded(ctx: Context, records: list[Record]) -> list[Event]:
    events = []
    for r in records:
        try:
            events.append(ctx.codec.decode(r.value))
        except PoisonInput:
            continue
    return sorted(events, key=lambda e: e.occurred_at)


def _domain(ctx: Context, events: list[Event]) -> tuple[float, int]:
    """(CPU seconds of the pure topology over ``events``, ClickHouse rows the events and its outputs make)."""
    district, policy = load_district(ctx.district_dir), load_hotspot_policy(ctx.district_dir)
    model = Model(district, timing_from(ctx.base), policy, ctx.base.success, tick=timedelta(seconds=1))
    decisions, cpu = _cpu(lambda: model.live((e, e.occurred_at) for e in events))
    rows = sum(len(projections_for(e.type)) for e in events)
    rows += sum(len(projections_for(e.type)) for out in decisions.published.values() for e in out)
    return cpu, rows


def run(ctx: Context) -> dict[str, Any]:
    worker = ctx.results.get("worker", {})
    if "throughput" not in worker:
        raise RuntimeError("the floor needs the worker figure of the same run (--figures worker,floor)")
    records = prefix_of(ctx.records, ctx.sizes.worker_events / max(len(ctx.records), 1))
    inputs = worker["messages"]
    sizes = worker["messages_by_topic"]
    reads = (sum(sizes.get(t, 0) for t in AGENT_TOPICS) + sum(sizes.get(t, 0) for t in PROJECTED_TOPICS)) / inputs
    writes = worker["messages_written_per_input"]

    (n, _, _, _), consume_cpu = _cpu(lambda: asyncio.run(raw.one_pass(ctx, keep=False)))
    values = [r.value for r in records] * 3  # about as many as the worker writes for this input
    topic = ctx.base.topic("floor")
    asyncio.run(ensure_topics(ctx.base.kafka_bootstrap, [topic], ctx.sizes.partitions))
    _, produce_cpu = _cpu(lambda: asyncio.run(_produce(ctx.base, topic, values, ctx.sizes.partitions)))
    rows = event_rows(ctx)
    size = ctx.sizes.sink_batch
    tables = [Rows(EVENTS, rows[i : i + size]).to_arrow() for i in range(0, len(rows), size)]
    client = connect(f"chdb://{(ctx.run_dir / 'floor-clickhouse').resolve()}")
    migrate(client)
    tokens = iter(range(len(tables)))
    _, insert_cpu = _cpu(
        lambda: [
            client.insert_arrow("events", t, settings={"insert_deduplication_token": f"floor-{next(tokens)}"})
            for t in tables
        ]
    )
    domain_cpu, rows_made = _domain(ctx, _decoded(ctx, records))
    faust_us = _faust_read_us(ctx, len(records))
    agent_reads = sum(sizes.get(t, 0) for t in AGENT_TOPICS) / inputs

    us = {
        "consume_decode_per_msg": consume_cpu / n * 1e6,
        "produce_per_msg": produce_cpu / len(values) * 1e6,
        "insert_per_row": insert_cpu / len(rows) * 1e6,
        "domain_per_input": domain_cpu / inputs * 1e6,
    }
    per_input = {"reads": round(reads, 2), "writes": writes, "rows": round(rows_made / inputs, 2)}
    parts = {
        "consume_decode": per_input["reads"] * us["consume_decode_per_msg"],
        "produce": per_input["writes"] * us["produce_per_msg"],
        "insert": per_input["rows"] * us["insert_per_row"],
        "domain": us["domain_per_input"],
    }
    floor_us = sum(parts.values())
    cpu_cores = worker["worker_cpu_cores"]["median"]
    worker_us = cpu_cores / worker["throughput"]["median"] * 1e6
    ctx.log(f"floor {floor_us:.0f} µs/input; worker {worker_us:.0f} µs/input (x{worker_us / floor_us:.1f})")
    return {
        "what": "CPU per input event from bare clients (consume+decode, batched produce, Arrow insert) times what "
        "the worker moves per input, plus the pure topology's domain time; against the worker's CPU per input",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "unit_costs_us": {k: round(v, 2) for k, v in us.items()},
        "per_input": per_input,
        "parts_us": {k: round(v, 1) for k, v in parts.items()},
        "floor_us_per_input": round(floor_us, 1),
        "worker_us_per_input": round(worker_us, 1),
        "ratio": round(worker_us / floor_us, 2),
        "framework": _framework(faust_us, agent_reads, us["consume_decode_per_msg"], floor_us),
        "targets": [
            {"metric": "worker CPU / floor", "op": "<=", "value": TARGET_RATIO},
            {"metric": "worker CPU µs per input", "op": "<=", "value": TARGET_US},
        ],
        "headline": headline("floor", "µs CPU/input", summary([floor_us], 1)),
    }
