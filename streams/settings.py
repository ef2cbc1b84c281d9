"""One frozen settings object, read from ``ALARMFLOW_*`` variables at the entry point and passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from projections.cluster import CLUSTER_NAME
from schemas.privacy import MIN_KEY_BYTES
from streams.domain.outcomes import OUTCOMES
from streams.errors import ConfigError

# Every topic alarmflow creates. The projector consumes the projected ones. Two are internal:
# "routing" (alarms and releases re-keyed by street, so one worker owns each street's open-case
# counts and hotspots) and "outcomes" (each case's counted conclusion, keyed by its daily aggregate).
PROJECTED_TOPICS = ("alarms", "case-events", "sla-alerts", "sla-breaches", "outcome-stats", "hotspots", "deadletter")
TOPIC_SUFFIXES = (*PROJECTED_TOPICS, "routing", "outcomes")
# What the stream agents (the Faust app's own consumer group) read.
AGENT_TOPICS = ("alarms", "case-events", "routing", "outcomes")


@dataclass(frozen=True)
class Settings:
    """Every knob of alarmflow; each field ``x`` is read from ``ALARMFLOW_X``."""

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_controller_port: int = 9093
    kafka_home: Path = Path("var/kafka")
    topic_prefix: str = "alarmflow"
    partitions: int = 4
    app_id: str = "alarmflow"
    clickhouse_dsn: str = ""
    clickhouse_cluster: str = ""  # a server's cluster (remote_servers): tables sharded and replicated across it
    var_dir: Path = Path("var")
    web_port: int = 6066
    web_bind: str = "127.0.0.1"
    phone_hmac_key: str = field(default="", repr=False)
    phone_hmac_key_file: Path | None = None
    max_message_bytes: int = 64 * 1024
    max_future_hours: int = 24
    batch_max: int = 10_000
    batch_within_ms: int = 500
    agent_batch_max: int = 1000  # events an agent takes at once (one acknowledgement round trip per batch)
    agent_batch_within_ms: int = 50  # the longest an agent waits to fill a batch (per stage: latency for throughput)
    # The longest the broker holds the agents' fetch for data: with one fetch in flight per broker, a partition
    # drained meanwhile waits for it, so this bounds a record's wait before an agent reads it. (The projector's
    # fetch waits up to batch_within_ms: it writes fewer, larger batches for it.)
    fetch_max_wait_ms: int = 100
    log_level: str = "info"
    district_dir: Path | None = None
    sla_lateness_ms: int = 60_000
    sla_escalation_window_s: int = 60
    retention_h: int = 72  # settled cases, seen alarms, released holders, sealed days: remembered this long
    tick_interval_ms: int = 1000
    success_outcomes: str = "RESOLVED"  # comma-separated; success rate = success / (concluded − NO_ACTION_NEEDED)
    role: str = "all"  # all | agents | projector: scale agents over partitions, keep one projector
    event_loop: str = "uvloop"  # the worker's asyncio loop: uvloop (Faust's ``-L uvloop``) or aio (the standard one)
    failpoints: str = ""  # injected ClickHouse write failures for the fault suite (projections.failpoints)
    # ClickHouse's HTTP interface on the embedded database, for analysts' tools (streams.clickhouse_http); 0: off.
    clickhouse_http_port: int = 8123
    clickhouse_http_bind: str = "127.0.0.1"
    clickhouse_http_user: str = "analyst"
    clickhouse_http_password: str = field(default="", repr=False)  # empty: allowed on a loopback bind only
    clickhouse_http_password_file: Path | None = None
    analyst_max_execution_s: int = 60  # per query, then ClickHouse's 159 TIMEOUT_EXCEEDED
    analyst_max_result_rows: int = 1_000_000  # then 396 TOO_MANY_ROWS_OR_BYTES
    analyst_max_result_bytes: int = 512 * 1024 * 1024
    analyst_max_memory_bytes: int = 2 * 1024 * 1024 * 1024  # then 241 MEMORY_LIMIT_EXCEEDED
    analyst_max_threads: int = 1  # ClickHouse threads per analyst query: the projector keeps the other cores
    analyst_connections: int = 2  # analyst queries running at once (each on its own chDB connection)

    def topic(self, suffix: str) -> str:
        return f"{self.topic_prefix}.{suffix}"

    @property
    def faust_app_id(self) -> str:
        """The Faust app's id, which is its consumer group: the agents' group, except in a projector-only process,
        which runs no agent and must not join that group (the agents' leader would assign it agent partitions and
        it would wait for them for ever). Its own group reads no partition."""
        return f"{self.app_id}-projector-app" if self.role == "projector" else self.app_id

    def consumer_groups(self) -> dict[str, list[str]]:
        """Every consumer group the worker runs, with the topics it reads: for lag and replays."""
        return {
            self.app_id: [self.topic(t) for t in AGENT_TOPICS],
            f"{self.app_id}-projector": [self.topic(t) for t in PROJECTED_TOPICS],
        }

    @property
    def success(self) -> frozenset[str]:
        return frozenset(o.strip() for o in self.success_outcomes.split(",") if o.strip())

    @property
    def dsn(self) -> str:
        return self.clickhouse_dsn or f"chdb://{(self.var_dir / 'clickhouse').resolve()}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def phone_key(self) -> bytes:
        """The HMAC key for phone tokens; never logged, never defaulted in code, at least 16 bytes."""
        if self.phone_hmac_key:
            return _long_enough(self.phone_hmac_key.encode(), "ALARMFLOW_PHONE_HMAC_KEY")
        if self.phone_hmac_key_file is not None:
            try:
                key = self.phone_hmac_key_file.read_bytes().strip()
            except OSError as exc:
                raise ConfigError(f"ALARMFLOW_PHONE_HMAC_KEY_FILE: cannot read {exc.filename}: {exc.strerror}") from exc
            return _long_enough(key, f"ALARMFLOW_PHONE_HMAC_KEY_FILE ({self.phone_hmac_key_file})")
        raise ConfigError(
            "set ALARMFLOW_PHONE_HMAC_KEY (or ALARMFLOW_PHONE_HMAC_KEY_FILE): callers' numbers are "
            "stored only as keyed tokens"
        )

    @property
    def clickhouse_http_url(self) -> str:
        return f"http://127.0.0.1:{self.clickhouse_http_port}"

    def clickhouse_http_secret(self) -> str:
        """The analysts' password; never logged. None set is allowed only while the interface listens on loopback."""
        password = self.clickhouse_http_password
        if not password and self.clickhouse_http_password_file is not None:
            try:
                password = self.clickhouse_http_password_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"ALARMFLOW_CLICKHOUSE_HTTP_PASSWORD_FILE: cannot read {exc.filename}: {exc.strerror}"
                ) from exc
        if not password and self.clickhouse_http_bind not in ("127.0.0.1", "::1", "localhost"):
            raise ConfigError(
                f"ALARMFLOW_CLICKHOUSE_HTTP_BIND={self.clickhouse_http_bind}: set ALARMFLOW_CLICKHOUSE_HTTP_PASSWORD "
                "(or _PASSWORD_FILE); the interface answers without a password only on loopback"
            )
        return password

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for spec in fields(cls):
            name = f"ALARMFLOW_{spec.name.upper()}"
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            values[spec.name] = _convert(name, raw, spec.type)
        values.update(overrides)
        settings = cls(**values)  # type: ignore[arg-type]
        if settings.partitions < 1:
            raise ConfigError("ALARMFLOW_PARTITIONS must be at least 1")
        unknown = settings.success - set(OUTCOMES)
        if unknown or not settings.success:
            raise ConfigError(f"ALARMFLOW_SUCCESS_OUTCOMES: use a comma-separated subset of {', '.join(OUTCOMES)}")
        if settings.fetch_max_wait_ms < 0:
            raise ConfigError("ALARMFLOW_FETCH_MAX_WAIT_MS must be 0 or more")
        if settings.role not in ("all", "agents", "projector"):
            raise ConfigError(f"ALARMFLOW_ROLE={settings.role!r}: use all, agents or projector")
        if settings.event_loop not in ("uvloop", "aio"):
            raise ConfigError(f"ALARMFLOW_EVENT_LOOP={settings.event_loop!r}: use uvloop or aio")
        _check_cluster(settings)
        return settings


def _check_cluster(settings: Settings) -> None:
    if settings.clickhouse_cluster and not CLUSTER_NAME.fullmatch(settings.clickhouse_cluster):
        raise ConfigError(
            f"ALARMFLOW_CLICKHOUSE_CLUSTER={settings.clickhouse_cluster!r}: use letters, digits and underscores"
        )


def require_server_for_cluster(settings: Settings) -> None:
    """The process that writes ClickHouse checks this; others (agents, tools) never open it and may share the
    setting with it (one ConfigMap for every role)."""
    if settings.clickhouse_cluster and settings.dsn.startswith("chdb:"):
        raise ConfigError(
            "ALARMFLOW_CLICKHOUSE_CLUSTER needs a ClickHouse server: set ALARMFLOW_CLICKHOUSE_DSN=http(s)://…"
        )


def _long_enough(key: bytes, name: str) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"{name} holds {len(key)} bytes; a phone HMAC key needs at least {MIN_KEY_BYTES}")
    return key


def _convert(name: str, raw: str, kind: object) -> object:
    kind = str(kind)
    try:
        if kind == "int":
            return int(raw)
        if "Path" in kind:
            return Path(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind}") from None
    return raw


def env_names() -> list[str]:
    """Every environment variable alarmflow reads."""
    return [f"ALARMFLOW_{spec.name.upper()}" for spec in fields(Settings)]
