"""How big each figure runs (the full sizes the issue asks for, and tiny ones for ``--quick``, CI), and on which
workload (``--workload``)."""

from __future__ import annotations

from dataclasses import dataclass

from streams.simulator.config import ALL_STREETS, HEZHUANG


@dataclass(frozen=True)
class Sizes:
    """Every size and time knob of one run."""

    events: int = 1_000_000  # the pre-published input topic (alarms + case-events), messages
    repetitions: int = 3
    # The worker figure's input: the first messages of every partition of the input. Not all 1M: on the shared
    # 2-core machine the worker does 150-400 events/s, so 3 repetitions over 1M would take 2 to 6 hours.
    worker_events: int = 50_000
    # the worker figure's deployments (bench/figures/worker.py), alternated; the first, the default deployment, is
    # the headline and the others are reported against it
    worker_deployments: str = "split,single"
    partitions: int = 4
    decode_payloads: int = 1_000_000  # payloads of the input topic decoded per pass (all of a 1M topic)
    sink_rows: int = 200_000  # events-table rows written per variant and repetition
    sink_batch: int = 10_000  # rows per insert: the projector's default ALARMFLOW_BATCH_MAX
    latency_window_s: float = 40.0  # offered load per repetition
    latency_accept_s: int = 10  # accept deadline of the latency run's district (contact 3x, arrive 8x)
    latency_grace_s: float = 20.0  # after the window: how long to wait for late probes
    # offered loads as shares of the worker figure's median, each on a fresh deployment; the first is the headline
    latency_shares: str = "0.5,0.25,0.1"
    scale_events: int = 20_000
    flat_events: int = 1_000_000  # the flat figure's backlog: the first messages of the input (all of a 1M input)
    scale_partitions: int = 8
    # Open cases go through the worker; every dispatch of one street is serial on one routing partition
    # (~45 alarms/s here), so 100k would take ~40 min: measure 20k and project the slope to 100k.
    memory_open_cases: int = 20_000
    memory_open_target: int = 100_000
    memory_closed_cases: int = 1_000_000
    memory_closed_per_day: int = 10_000  # event-time density of the closed cases (retention is 72 h)
    profile_events: int = 20_000  # the cProfile'd worker run reads this prefix of the input topic
    poll_s: float = 1.0  # longest pause between two consumer-lag looks
    stall_s: float = 600.0  # a run whose lag has not moved for this long is abandoned
    sim_rate_per_day: float = 100_000.0  # the simulator's alarm rate for the input topic


QUICK = Sizes(
    events=1_500,
    worker_events=1_500,
    worker_deployments="split",
    repetitions=3,
    decode_payloads=1_500,
    sink_rows=3_000,
    sink_batch=1_000,
    latency_window_s=8.0,
    latency_accept_s=2,
    latency_grace_s=10.0,
    latency_shares="0.5,0.1",
    scale_events=900,
    flat_events=1_500,
    scale_partitions=4,
    memory_open_cases=300,
    memory_closed_cases=3_000,
    memory_closed_per_day=1_000,
    profile_events=600,
    poll_s=0.25,
    stall_s=90.0,
)
FULL = Sizes()


@dataclass(frozen=True)
class Workload:
    """Which district the input comes from, and which of its streets call (bench/workload.py: upstream)."""

    name: str
    district: str  # a folder under deploy/; every worker gets it as ALARMFLOW_DISTRICT_DIR (in the code snapshot)
    street: str  # a street code, or ALL_STREETS: every street, the rate shared by grid weight


STREET = Workload("street", "district", HEZHUANG)  # the default: older results stay comparable
CITY = Workload("city", "city", ALL_STREETS)  # deploy/city: 40 streets
WORKLOADS = {w.name: w for w in (STREET, CITY)}
