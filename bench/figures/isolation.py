"""isolation: the projector's throughput on a pre-filled backlog alone, and while an analyst loop runs heavy GROUP BYs
through the ClickHouse HTTP interface of the same process, in the same run.

Each repetition runs both, in alternating order (the machine is shared and drifts), each on a fresh byte-for-byte
copy of the input under its own prefix (fresh consumer group and database), with ``ALARMFLOW_ROLE=projector`` so
the projector is all the worker does. The analyst loop is one client that sends the next query as soon as the last
one answered, alternating a GROUP BY over the events table the projector is writing and a CPU-bound GROUP BY over
``numbers()``; its queries run on the analyst connections (projections.analyst), capped by the analyst limits.
Throughput = input messages / (web endpoint ready → lag 0 on the projector's group).
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from bench.context import Context, Record
from bench.figures.worker import drop_database
from bench.stats import headline, summary
from bench.workers import PREFILLED_ENV, running, spawn, wait_caught_up, wait_ready, worker_env
from bench.workload import delete_deployment, fresh_copy, prefix_of
from streams.settings import Settings

TARGET = 0.8  # projector events/s with the analyst loop / alone
PASSWORD = "bench-analyst"  # noqa: S105 - the throw-away worker's own, on loopback
QUERIES = (
    "SELECT type, kafka_partition, count(), uniqExact(case_id), max(length(payload)) FROM events "
    "GROUP BY type, kafka_partition ORDER BY count() DESC FORMAT Null",
    "SELECT number % 1000003 AS k, count(), sum(number), uniqExact(intHash32(number)) FROM numbers(6000000) "
    "GROUP BY k ORDER BY count() DESC LIMIT 10 FORMAT Null",
)


class AnalystLoop(threading.Thread):
    """Heavy GROUP BYs back to back through the HTTP interface until stopped; counts answers and errors."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.url = settings.clickhouse_http_url + "/"
        token = base64.b64encode(f"{settings.clickhouse_http_user}:{PASSWORD}".encode()).decode()
        self.auth = f"Basic {token}"
        self.stop_flag = threading.Event()
        self.answered, self.errors, self.refused = 0, 0, 0
        self.query_s: list[float] = []
        self.first_error = ""

    def run(self) -> None:
        i = 0
        while not self.stop_flag.is_set():
            sql = QUERIES[i % len(QUERIES)]
            i += 1
            request = urllib.request.Request(  # noqa: S310 - our loopback interface
                self.url, data=sql.encode(), headers={"Authorization": self.auth}, method="POST"
            )
            start = time.monotonic()
            try:
                with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
                    response.read()
                self.answered += 1
                self.query_s.append(round(time.monotonic() - start, 2))
            except urllib.error.HTTPError as exc:  # an answer: ClickHouse's error (a limit, say)
                self.errors += 1
                self.first_error = self.first_error or exc.read().decode(errors="replace")
            except (urllib.error.URLError, OSError):
                self.refused += 1  # the interface is not up yet
                time.sleep(0.1)

    def stop(self) -> None:
        self.stop_flag.set()
        self.join(timeout=130)


def one(ctx: Context, index: int, records: list[Record], analyst: bool) -> dict[str, Any]:
    kind = "analyst" if analyst else "alone"
    prefix = f"{ctx.base.topic_prefix}-i{index}{kind[0]}"
    n = asyncio.run(fresh_copy(ctx.base, ctx.codec, records, prefix, ctx.sizes.partitions))
    var_dir = ctx.run_dir / f"isolation-{index}-{kind}"
    env = worker_env(
        ctx, prefix, prefix, var_dir, ALARMFLOW_ROLE="projector", ALARMFLOW_CLICKHOUSE_HTTP_PASSWORD=PASSWORD,
        **PREFILLED_ENV,
    )  # fmt: skip
    settings = Settings.from_env(env)
    group = f"{settings.app_id}-projector"
    loop = AnalystLoop(settings)
    with running([]) as workers:
        w = spawn(ctx, f"isolation-{index}-{kind}", env)
        workers.append(w)
        if analyst:
            loop.start()  # it retries until the interface answers, so it is on before the backlog drains
        ready = wait_ready(w)
        done = wait_caught_up(ctx, {group: settings.consumer_groups()[group]}, workers, timeout=n / 20 + 600)
        if analyst:
            loop.stop()
    asyncio.run(delete_deployment(ctx.base, prefix))
    drop_database(var_dir)
    elapsed = done - ready
    ctx.log(f"isolation {index + 1}/{ctx.sizes.repetitions} {kind}: {n} messages in {elapsed:.1f}s")
    out: dict[str, Any] = {"messages": n, "elapsed_s": elapsed, "events_per_s": n / elapsed}
    if analyst:
        out.update(analyst_queries=loop.answered, analyst_query_s=loop.query_s, analyst_errors=loop.errors)
        if loop.first_error:
            out["analyst_first_error"] = loop.first_error[:200]
    return out


def run(ctx: Context) -> dict[str, Any]:
    records = prefix_of(ctx.records, ctx.sizes.worker_events / max(len(ctx.records), 1))
    alone: list[dict[str, Any]] = []
    loaded: list[dict[str, Any]] = []
    for i in range(ctx.sizes.repetitions):
        for analyst in (i % 2 == 1, i % 2 == 0):  # alternate which goes first
            (loaded if analyst else alone).append(one(ctx, i, records, analyst))
    ratios = [b["events_per_s"] / a["events_per_s"] for a, b in zip(alone, loaded, strict=True)]
    ratio = summary(ratios, 3)
    return {
        "what": "python -m streams.cli worker (role projector) on a fresh copy of the input per run, ready -> lag 0, "
        "alone vs with one analyst client running heavy GROUP BYs back to back through the ClickHouse HTTP port",
        "settings": {"ALARMFLOW_ROLE": "projector", "analyst_max_threads": Settings().analyst_max_threads},
        "queries": list(QUERIES),
        "messages": alone[0]["messages"],
        "alone_events_per_s": summary([r["events_per_s"] for r in alone], 0),
        "with_analyst_events_per_s": summary([r["events_per_s"] for r in loaded], 0),
        "analyst_queries_answered": [r["analyst_queries"] for r in loaded],
        "analyst_errors": [r["analyst_errors"] for r in loaded],
        "ratio": ratio,
        "runs": {"alone": alone, "with_analyst": loaded},
        "target": {"metric": "with analyst / alone", "op": ">=", "value": TARGET},
        "headline": headline("isolation (with analyst / alone)", "ratio", ratio),
    }
