"""``python -m chaos``: the fault-injection suite. ``make chaos`` runs it on a broker of its own.

Runs a clean reference of a seeded simulated street, checks it against the live run of the same input on
the pure engines, then each fault scenario against the reference; prints a table of scenario × invariant,
keeps each run's evidence (worker logs, a JSON report) under ``var/chaos/<seed>-<time>/``, and exits 1 if
any invariant fails anywhere.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from chaos import scenarios
from chaos.model import Model, comparable
from chaos.observe import check
from chaos.scenarios import Context, Outcome
from chaos.stack import Broker, Namespace, env_for
from chaos.workload import LATENESS_MS, Workload, street
from streams.domain.sla import SlaTiming
from streams.reference_files import load_district, load_hotspot_policy
from streams.settings import Settings

SCENARIOS = ("F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9")
TITLES = {
    "F1": "kill -9 ×N mid-backlog",
    "F2": "SIGTERM, restart",
    "F3": "broker down 5 s, 40 s",
    "F4": "ClickHouse write fails",
    "F5": "workers join and leave",
    "F6": "poison on every topic",
    "F7+": "field clock 1 h ahead",
    "F7-": "field clock 1 h behind",
    "F8": "local state lost",
    "F9a": "replay, fresh database",
    "F9b": "replay, same database",
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=float, default=1.5, help="simulated days of the street")
    parser.add_argument("--rate", type=float, default=1000, help="alarms a day")
    parser.add_argument("--kills", type=int, default=5, help="kill -9s in F1")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios, e.g. F1,F3")
    parser.add_argument("--out", type=Path, default=Path("var/chaos"))
    args = parser.parse_args()
    console = Console(width=260)
    settings = Settings.from_env()
    run_dir = (args.out / f"{args.seed}-{datetime.now(UTC):%Y%m%dT%H%M%S}").resolve()
    run_dir.mkdir(parents=True)
    base = {**env_for(settings), "ALARMFLOW_SLA_LATENESS_MS": str(LATENESS_MS), "ALARMFLOW_BATCH_WITHIN_MS": "200"}
    counter = iter(range(1000))

    token = f"{datetime.now(UTC):%H%M%S}"  # topics of an earlier run on the same broker are never reused

    def new_namespace(label: str) -> Namespace:
        return Namespace(run_dir, f"c{args.seed}t{token}n{next(counter):02d}{label}", base)

    workload = street(args.seed, args.days, args.rate)
    console.print(
        f"chaos seed {args.seed}: {len(workload.events)} messages ({workload.malformed} malformed), "
        f"{args.days} days; evidence in {run_dir}"
    )
    ctx = Context(new_namespace, workload, Broker(settings), random.Random(args.seed), args.kills)
    results: dict[str, dict[str, str | None]] = {}
    evidence: dict[str, Any] = {}
    started = time.monotonic()
    reference = scenarios.clean(ctx)
    results["clean = live run"] = _against_model(reference, workload)
    wanted = set(args.only.split(","))
    for name, outcome in _run(ctx, wanted, console):
        against = outcome.reference or reference.snapshot
        results[name] = {**check(outcome.snapshot, against, outcome.expect), **outcome.checks}
        evidence[name] = outcome.evidence
        _stop_all(run_dir)
    failed = _report(console, results, evidence, run_dir, time.monotonic() - started)
    return 1 if failed else 0


def _run(ctx: Context, wanted: set[str], console: Console) -> Any:
    """Each wanted scenario as (row name, outcome), in order; a scenario that crashes is a failed row."""
    plan: list[tuple[str, Any]] = [
        ("F1", scenarios.f1_kill9),
        ("F2", scenarios.f2_sigterm),
        ("F3", scenarios.f3_broker_down),
        ("F4", scenarios.f4_clickhouse),
        ("F5", scenarios.f5_rebalance),
        ("F6", scenarios.f6_poison),
        ("F7+", lambda c: scenarios.f7_clocks(c, timedelta(hours=1))),
        ("F7-", lambda c: scenarios.f7_clocks(c, timedelta(hours=-1))),
        ("F8", scenarios.f8_state_lost),
        ("F9", scenarios.f9_replay),
    ]
    for name, run in plan:
        if name.rstrip("+-") not in wanted:
            continue
        console.print(f"[bold]{name}[/bold] {TITLES.get(name, 'replay')} …")
        began = time.monotonic()
        outcome = run(ctx)
        console.print(f"  done in {time.monotonic() - began:.0f} s")
        if isinstance(outcome, list):
            yield from ((f"{name}{'ab'[i]}", o) for i, o in enumerate(outcome))
        else:
            yield name, outcome


def _live(workload: Workload) -> Any:
    from schemas.codec import Codec

    codec = Codec()
    published = [(codec.from_json(e.value), e.published_at) for e in workload.valid]
    last = max(at for _, at in published)
    timing = SlaTiming(lateness=timedelta(milliseconds=LATENESS_MS))
    model = Model(load_district(), timing, load_hotspot_policy(), frozenset({"RESOLVED"}))
    return model.live(published, until=last + timedelta(hours=12))


def _against_model(reference: Outcome, workload: Workload) -> dict[str, str | None]:
    """The clean run decides what a live run decides: the suite's reference is itself checked."""
    model = comparable(_live(workload))
    run = reference.snapshot
    out: dict[str, str | None] = {}
    for name, got, want in (
        ("breaches", run.breaches, model["breaches"]),
        ("alerts", run.alerts, model["alerts"]),
        ("dispatches", set(run.dispatches.items()), set(model["dispatches"].items())),
        ("escalations", run.reassignments, model["reassignments"]),
        ("outcomes", set(run.outcomes.items()), set(model["outcomes"].items())),
        ("hotspots", run.episodes, model["episodes"]),
    ):
        out[name] = None if got == want else f"{len(got - want)} more, {len(want - got)} fewer than the live run"
    out["verify"] = None if run.verify_clean else "differences"
    return out


def _stop_all(run_dir: Path) -> None:
    """Workers left over from a scenario would hold ports and CPU: every namespace's workers are stopped."""
    for ns in Namespace.opened:
        ns.stop_all()


def _report(
    console: Console, results: dict[str, dict[str, str | None]], evidence: dict[str, Any], run_dir: Path, took: float
) -> bool:
    columns: list[str] = []
    for checks in results.values():
        columns += [c for c in checks if c not in columns]
    table = Table("scenario", *columns, title=f"alarmflow faults × invariants ({took / 60:.1f} min)", min_width=60)
    failed = False
    for name, checks in results.items():
        cells = []
        for c in columns:
            if c not in checks:
                cells.append("")
            elif checks[c] is None:
                cells.append("[green]ok[/green]")
            else:
                cells.append("[red]FAIL[/red]")
                failed = True
        table.add_row(name, *cells)
    console.print(table)
    console.print("  ".join(f"{k}: {v}" for k, v in TITLES.items()))
    for name, checks in results.items():
        for c, problem in checks.items():
            if problem is not None:
                console.print(f"[red]{name} / {c}[/red]: {problem}")
    report = {"results": results, "evidence": evidence, "minutes": round(took / 60, 1), "failed": failed}
    (run_dir / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str))
    console.print(f"evidence: {run_dir} ({json.dumps(evidence, default=str)})")
    shutil.rmtree(run_dir / "clickhouse", ignore_errors=True)
    return failed


if __name__ == "__main__":
    sys.exit(main())
