"""``python -m chaos.startup --days 30``: how long a worker takes to start after a month of history, with its
local state (RocksDB) and without it (recovered from the changelogs alone).

One simulated street for ``--days`` is run to lag 0 and the worker stopped. Then, twice (local state kept, then
the state directory deleted), a worker is started and one new alarm published at once: the start-up time is
from the process start until that alarm's dispatch is in ClickHouse, i.e. until the worker recovered and
processes new input. Prints one JSON object; needs the broker the environment names (``alarmflow kafka up``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from chaos.stack import Namespace, env_for
from chaos.workload import LATENESS_MS, street
from streams.settings import Settings
from streams.simulator.events import SimEvent
from streams.simulator.stamps import from_ms


def probe(template: SimEvent, at_ms: int) -> SimEvent:
    """A copy of a dispatchable alarm from the workload, as a new alarm after the last of it."""
    assert isinstance(template.value, dict)
    alarm_id = f"PROBE-{uuid.uuid4().hex[:8]}"
    value = {**template.value, "event_id": str(uuid.uuid4()), "alarm_id": alarm_id}
    value["occurred_at"] = from_ms(at_ms).isoformat()
    return replace(template, publish_ms=at_ms, occurred_ms=at_ms, key=alarm_id, value=value)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m chaos.startup", description=__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--rate", type=float, default=1000, help="alarms a day")
    parser.add_argument("--out", type=Path, default=Path("var/chaos"))
    args = parser.parse_args()
    settings = Settings.from_env()
    base = {**env_for(settings), "ALARMFLOW_SLA_LATENESS_MS": str(LATENESS_MS), "ALARMFLOW_BATCH_WITHIN_MS": "200"}
    ns = Namespace(args.out.resolve(), f"startup{args.seed}t{int(time.time())}", base)
    workload = street(args.seed, args.days, args.rate)
    template = next(
        e
        for e in workload.valid
        if e.topic == "alarms" and isinstance(e.value, dict) and e.value["police_matter"] == "NON_POLICE"
    )
    ns.send(workload.events)
    began = time.monotonic()
    worker = ns.start()
    ns.caught_up(timeout=7200)
    history_s = time.monotonic() - began
    worker.stop(signal.SIGTERM)
    result: dict[str, object] = {
        "days": args.days,
        "messages": len(workload.events),
        "history_processed_s": round(history_s, 1),
    }
    last_ms = max(e.publish_ms for e in workload.events)
    for label in ("with_local_state", "without_local_state"):
        if label == "without_local_state":
            shutil.rmtree(ns.var / "faust")
        new = probe(template, last_ms + int(timedelta(minutes=1).total_seconds() * 1000))
        started = time.monotonic()
        worker = ns.start(wait=False)
        ns.send([new])
        ns.wait_web(worker, timeout=3600)  # from here on queries go through the worker that holds the database
        query = "SELECT count() FROM dispatches WHERE case_id = {a:String}"
        while not ns.sql(query, a=new.key)[0][0]:
            if not worker.alive():
                raise SystemExit(f"the worker exited: see {worker.log}")
            time.sleep(0.2)
        result[f"start_s_{label}"] = round(time.monotonic() - started, 1)
        worker.stop(signal.SIGTERM)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
