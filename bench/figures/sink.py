"""sink: the projection writer alone (ClickHouseSink.write of Rows for the events table) against a standalone
Arrow bulk insert of the same rows (clickhouse-connect insert_arrow of a pre-built table) and an
INSERT ... VALUES text insert, into the same table of the embedded engine, batch by batch.

Each variant starts from an empty table (TRUNCATE) and every insert carries its own deduplication token, as
the projector's do. The sink's time includes its Rows.to_arrow(); that share is reported apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.binding import format_query_value
from clickhouse_connect.driver.client import Client

from bench.context import Context
from bench.stats import headline, summary
from projections.client import connect
from projections.migrate import migrate
from projections.rows import EVENT_LOG, RowContext
from projections.sink import ClickHouseSink
from projections.tables import EVENTS, Rows
from schemas.errors import PoisonInput
from schemas.privacy import Redactor

TARGET_ARROW = 0.8  # sink rows/s / standalone Arrow rows/s
TARGET_VALUES = 3.0  # sink rows/s / VALUES rows/s
Batch = Sequence[Sequence[Any]]


def event_rows(ctx: Context) -> list[tuple[Any, ...]]:
    row_ctx = RowContext(ctx.codec, Redactor(ctx.phone_key.encode()), datetime.now(UTC))
    out: list[tuple[Any, ...]] = []
    for r in ctx.records:
        if len(out) >= ctx.sizes.sink_rows:
            break
        try:
            event = ctx.codec.decode(r.value)
        except PoisonInput:
            continue
        out.append(EVENT_LOG.row(event, (r.topic, r.partition, r.offset), row_ctx))
    return out


def _literal(value: Any) -> str:
    if isinstance(value, datetime):
        t = value.astimezone(UTC)
        return f"'{t:%Y-%m-%d %H:%M:%S}.{t.microsecond // 1000:03d}'"
    return str(format_query_value(value))


def values_statement(batch: Batch) -> str:
    """A plain INSERT ... VALUES, the text a client without a columnar format sends."""
    rows = ",".join("(" + ",".join(_literal(v) for v in row) + ")" for row in batch)
    return f"INSERT INTO events ({', '.join(EVENTS.columns)}) VALUES {rows}"


def _timed(client: Client, batches: list[Batch], write: Callable[[int, Batch, str], object], tag: str) -> float:
    client.command("TRUNCATE TABLE events")
    start = time.perf_counter()
    for i, batch in enumerate(batches):
        write(i, batch, f"bench-{tag}-{i}")
    return time.perf_counter() - start


def run(ctx: Context) -> dict[str, Any]:
    rows = event_rows(ctx)
    size = ctx.sizes.sink_batch
    batches: list[Batch] = [rows[i : i + size] for i in range(0, len(rows), size)]
    client = connect(f"chdb://{(ctx.run_dir / 'sink-clickhouse').resolve()}")
    migrate(client)
    sink = ClickHouseSink(client)
    tables = [Rows(EVENTS, b).to_arrow() for b in batches]
    dedup = "insert_deduplication_token"

    variants: dict[str, Callable[[int, Batch, str], object]] = {
        "sink": lambda i, b, token: sink.write(Rows(EVENTS, b), token),
        "arrow": lambda i, b, token: client.insert_arrow("events", tables[i], settings={dedup: token}),
        "values": lambda i, b, token: client.command(values_statement(b), settings={dedup: token}),
    }
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for name, write in variants.items():
        _timed(client, batches, write, f"warm-{name}")
    for rep in range(ctx.sizes.repetitions):
        for name, write in variants.items():
            seconds[name].append(_timed(client, batches, write, f"{name}-{rep}"))
        ctx.log(
            f"sink {rep + 1}/{ctx.sizes.repetitions}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in seconds.items())
        )
    start = time.perf_counter()
    for b in batches:
        Rows(EVENTS, b).to_arrow()
    to_arrow_s = time.perf_counter() - start
    n = len(rows)
    rates = {name: summary([n / s for s in secs], 0) for name, secs in seconds.items()}
    per_rep = list(zip(seconds["sink"], seconds["arrow"], seconds["values"], strict=True))
    vs_arrow = summary([a / s for s, a, _ in per_rep])
    vs_values = summary([v / s for s, _, v in per_rep])
    return {
        "what": "events-table rows, batch by batch into the embedded engine: ClickHouseSink.write (Rows.to_arrow + "
        "insert_arrow) vs insert_arrow of a pre-built Arrow table vs INSERT ... VALUES text",
        "rows": n,
        "batch_rows": size,
        "rows_per_s": rates,
        "sink_vs_arrow": vs_arrow,
        "sink_vs_values": vs_values,
        "sink_to_arrow_share": round(to_arrow_s / sorted(seconds["sink"])[len(per_rep) // 2], 3),
        "targets": [
            {"metric": "sink / arrow", "op": ">=", "value": TARGET_ARROW},
            {"metric": "sink / values", "op": ">=", "value": TARGET_VALUES},
        ],
        "headline": headline("sink", "x Arrow insert", vs_arrow),
    }
