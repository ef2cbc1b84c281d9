"""The stream agents: one per input topic, each running one engine with one table. Thin adapters.

Topology (keys in brackets; every arrow is acknowledged before the state that records it is logged):
  alarms [alarm_id] ──triage──► case-events [case_id]: AlarmTriaged
                            └─► routing [street]: AlarmTriaged (located non-police), then alarms/<n> progress
  routing [street] ──streets──► case-events [case_id]: CaseDispatched, then routing/<n> progress
                            └─► hotspots [hotspot_id]: HotspotDetected / Updated / Cooled
  case-events [case_id] ──cases──► sla-alerts: SlaAtRisk, SlaOverdue; sla-breaches: SlaBreached;
                                   case-events and routing: CaseReassigned;
                                   routing: AssignmentReleased; outcomes [stats_key]: OutcomeCounted,
                                   then cases/<n> progress; deadletter: Orphan
  outcomes [stats_key] ──outcomes──► outcome-stats [stats_key]: OutcomeStatsUpdated
The worker appends a ClockTicked (tick/<n>) to each alarms and case-events partition it owns every second.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import faust
from faust.types import StreamT, TopicT
from faust.web import Request, Response, View

from schemas.codec import Codec
from schemas.privacy import Redactor
from schemas.validation import Limits
from streams import metrics
from streams.agents import state
from streams.agents.runtime import Binding, Engine, Outbox, Runner, ticker
from streams.domain.case_engine import CaseEngine, CaseMeta
from streams.domain.district import District
from streams.domain.engine import META
from streams.domain.hotspots import HotspotPolicy
from streams.domain.outcome_engine import OutcomeEngine, OutcomeMeta
from streams.domain.sla import SlaTiming
from streams.domain.street_engine import StreetEngine, StreetMeta
from streams.domain.triage_engine import TriageEngine, TriageMeta
from streams.settings import Settings

INPUTS = {"triage": "alarms", "streets": "routing", "cases": "case-events", "outcomes": "outcomes"}
OUTPUTS = (
    "case-events",
    "routing",
    "sla-alerts",
    "sla-breaches",
    "outcomes",
    "outcome-stats",
    "hotspots",
    "deadletter",
)


def changelog_topics(settings: Settings) -> list[str]:
    """Each engine table's changelog, named as Faust names it (``<app id>-<table>-changelog``). The worker
    creates them before Faust starts: a topic Faust creates itself can be missing from the broker's metadata
    at the first assignment, and that assignment then never starts the streams (seen once in the fault suite;
    the consumer's metadata refresh, five minutes later, freed them)."""
    return [f"{settings.app_id}-{name}-state-changelog" for name in INPUTS]


UPSTREAM = frozenset({"alarms", "case-events"})  # where poison can come from: the gate runs there
# Per partition database (Faust's defaults, 3 × 64 MiB memtables and a 2 GiB cache, are sized for a few large
# tables; these hold a few thousand small entries each, read into memory once per assignment).
ROCKSDB_OPTIONS = {
    "write_buffer_size": 4 << 20,
    "max_write_buffer_number": 2,
    "target_file_size_base": 16 << 20,
    "block_cache_size": 16 << 20,
    "max_open_files": 256,
}


def timing_from(settings: Settings) -> SlaTiming:
    return SlaTiming(
        lateness=timedelta(milliseconds=settings.sla_lateness_ms),
        escalation_window=timedelta(seconds=settings.sla_escalation_window_s),
        retention=timedelta(hours=settings.retention_h),
    )


class TriageBinding:
    def __init__(self, engine: TriageEngine) -> None:
        self.engine = engine

    def load(self, partition: int, entries: dict[str, bytes]) -> None:
        meta, rest = state.split_meta(entries)
        self.engine.load(
            partition,
            None if meta is None else state.decode_triage_meta(meta),
            ((k, state.decode_seen(v)) for k, v in rest.items()),
        )

    def encode(self, key: str, value: Any) -> bytes:
        if isinstance(value, TriageMeta):
            return state.dumps(state.encode_triage_meta(value))
        return state.dumps(state.encode_seen(value))


class StreetBinding:
    def __init__(self, engine: StreetEngine) -> None:
        self.engine = engine

    def load(self, partition: int, entries: dict[str, bytes]) -> None:
        meta, rest = state.split_meta(entries)
        self.engine.load(
            partition,
            None if meta is None else state.decode_street_meta(meta),
            ((k, state.decode_street(k, v)) for k, v in rest.items()),
        )

    def encode(self, key: str, value: Any) -> bytes:
        if isinstance(value, StreetMeta):
            return state.dumps(state.encode_street_meta(value))
        return state.dumps(state.encode_street(key, value))


class CaseBinding:
    def __init__(self, engine: CaseEngine, codec: Codec) -> None:
        self.engine, self.codec = engine, codec

    def load(self, partition: int, entries: dict[str, bytes]) -> None:
        meta = entries.pop(META, None)
        self.engine.load(
            partition,
            None if meta is None else state.decode_case_meta(json.loads(meta)),
            (state.decode_case(k, json.loads(v), self.codec) for k, v in entries.items()),
        )

    def encode(self, key: str, value: Any) -> bytes:
        if isinstance(value, CaseMeta):
            return state.dumps(state.encode_case_meta(value))
        return state.dumps(state.encode_case(value))


class OutcomeBinding:
    def __init__(self, engine: OutcomeEngine) -> None:
        self.engine = engine

    def load(self, partition: int, entries: dict[str, bytes]) -> None:
        meta, rest = state.split_meta(entries)
        self.engine.load(
            partition,
            None if meta is None else state.decode_outcome_meta(meta),
            ((k, state.decode_outcome(k, v)) for k, v in rest.items()),
        )

    def encode(self, key: str, value: Any) -> bytes:
        if isinstance(value, OutcomeMeta):
            return state.dumps(state.encode_outcome_meta(value))
        return state.dumps(state.encode_outcome(value))


def register(
    app: faust.App,
    settings: Settings,
    codec: Codec,
    district: District,
    hotspot_policy: HotspotPolicy,
    redactor: Redactor,
    limits: Limits,
) -> None:
    n = settings.partitions
    timing = timing_from(settings)
    topics = {suffix: raw_topic(app, settings.topic(suffix)) for suffix in {*INPUTS.values(), *OUTPUTS}}
    outbox = Outbox(app, codec, {suffix: topic.get_topic_name() for suffix, topic in topics.items()}, settings.app_id)
    retention = timedelta(hours=settings.retention_h)
    bindings: dict[str, Binding] = {
        "triage": TriageBinding(TriageEngine(district, timing.lateness, retention, n, redactor.token)),
        "streets": StreetBinding(StreetEngine(district, hotspot_policy, n, n, retention)),
        "cases": CaseBinding(CaseEngine(district, timing, n, n), codec),
        "outcomes": OutcomeBinding(OutcomeEngine(n, retention, settings.success)),
    }
    for name, binding in bindings.items():
        source = INPUTS[name]
        table = app.Table(
            f"{name}-state",
            default=None,
            key_type=bytes,
            value_type=bytes,
            partitions=n,
            help=f"the {name} engine",
            options=ROCKSDB_OPTIONS,
        )
        runner = Runner(app, settings, codec, binding, table, outbox, limits if source in UPSTREAM else None)
        _agent(app, topics[source], name, runner)
        _forget_on_rebalance(app, binding.engine)
    ticker(app, settings, codec, [topics["alarms"], topics["case-events"]])
    _load_page(app, bindings["streets"].engine)
    metrics.watch_cases(bindings["cases"].engine)


def _agent(app: faust.App, topic: TopicT, name: str, runner: Runner) -> None:
    async def agent(stream: StreamT[bytes]) -> None:
        await runner.run(stream)

    app.agent(topic, name=name)(agent)


def _forget_on_rebalance(app: faust.App, engine: Engine) -> None:
    """Another worker may have changed these partitions: reload each from the store before its next record."""

    def forget(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        engine.forget()

    app.on_partitions_assigned.connect(forget)


def _load_page(app: faust.App, engine: Any) -> None:
    """``GET /load``: each member's open cases, counted from the dispatch book of the routing partitions this
    worker holds in memory (every partition it owns, once a record has reached it: the progress announcements
    reach each one every second). Ops and the fault suite compare it with the open cases in ClickHouse."""
    streets: StreetEngine = engine

    @app.page("/load")
    class LoadView(View):
        async def get(self, request: Request) -> Response:
            load: dict[str, int] = {}
            for partition in streets.partitions.values():
                for key, n in partition.load.items():
                    load[key] = load.get(key, 0) + n
            return self.json({"partitions": sorted(streets.partitions), "open_cases": load})


def raw_topic(app: faust.App, name: str) -> TopicT:
    """A topic of Avro bytes: Faust passes them through; our codec does the decoding."""
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
