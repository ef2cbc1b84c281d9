"""Cluster DDL: every migration rendered ON CLUSTER parses in the engine; without a cluster, nothing changes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import chdb
import pytest

from projections.cluster import (
    REPLICA_NAME,
    REPLICA_PATH,
    SHARDING_KEYS,
    ClusterDDLError,
    insert_settings,
    render,
    replicated_engine,
)
from projections.migrate import _LEDGER, DDL_DIR, migrate, statements
from streams.errors import ConfigError
from streams.settings import Settings, env_names, require_server_for_cluster

CLUSTER, DATABASE = "city", "alarmflow"
REPO = Path(__file__).resolve().parents[2]


def formatted(statement: str) -> str:
    """The engine's own parser on ``statement`` (raises on a syntax error), as its canonical text."""
    literal = "'" + statement.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(chdb.query(f"SELECT formatQuery({literal})", "TSVRaw").bytes().decode()).removesuffix("\n")


def source_statements() -> list[tuple[str, str]]:
    out = [("ledger", _LEDGER)]
    for path in sorted(DDL_DIR.glob("*.sql")):
        out += [(path.name, s.rstrip(";")) for s in statements(path)]
    return out


def test_the_parser_check_can_fail() -> None:
    with pytest.raises(Exception, match="Syntax error"):
        formatted("CREATE TABLE t ON CLUSTER c (a String ENGINE = MergeTree ORDER BY a")


@pytest.mark.parametrize(("origin", "statement"), source_statements(), ids=lambda v: v[:40].split("\n")[0])
def test_every_migration_statement_renders_to_statements_the_engine_parses(origin: str, statement: str) -> None:
    rendered = render(statement, CLUSTER, DATABASE)
    assert rendered, origin
    for text in rendered:
        canonical = formatted(text)
        assert re.search(rf"\bON CLUSTER {CLUSTER}\b", canonical), canonical
        assert "non_replicated_deduplication_window" not in canonical


def test_every_table_becomes_a_replicated_local_table_and_a_distributed_one_under_its_name() -> None:
    tables: dict[str, str] = {}
    for _, statement in source_statements():
        if m := re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", statement):
            tables[m.group(1)] = statement
    assert {"events", "deadletters", "triage", "dispatches", "outcome_daily", "hotspots"} <= set(tables)
    for name, statement in tables.items():
        source_engine = re.search(r"ENGINE = (\w+(?:\(\w*\))?)", statement)
        assert source_engine is not None
        local, distributed = (formatted(s) for s in render(statement, CLUSTER, DATABASE))
        assert local.startswith(f"CREATE TABLE IF NOT EXISTS {name}_local ON CLUSTER {CLUSTER}\n")
        engine = re.search(r"ENGINE = (Replicated\w+)\(([^)]*)\)", local)
        assert engine is not None, local
        assert engine.group(1) == "Replicated" + source_engine.group(1).split("(")[0]
        args = [a.strip() for a in engine.group(2).split(",")]
        assert args[:2] == [REPLICA_PATH, REPLICA_NAME]
        assert args[2:] == (["version"] if "(version)" in source_engine.group(1) else [])
        # The same columns, order and settings as on one server, the dedup window under its replicated name.
        assert local.split("ENGINE")[0].split("\n", 1)[1] == formatted(statement).split("ENGINE")[0].split("\n", 1)[1]
        if "non_replicated_deduplication_window = 10000" in statement:
            assert "SETTINGS replicated_deduplication_window = 10000" in local
        key = SHARDING_KEYS.get(name, "cityHash64(case_id)")
        assert distributed == (
            f"CREATE TABLE IF NOT EXISTS {name} ON CLUSTER {CLUSTER} AS {name}_local\n"
            f"ENGINE = Distributed({CLUSTER}, '{DATABASE}', {name}_local, {key})"
        )


def test_each_case_stays_on_one_shard() -> None:
    keyed_by_case = {"events", "triage", "dispatches", "sla_breaches", "sla_alerts", "reassignments", "lifecycle"}
    for _, statement in source_statements():
        m = re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", statement)
        if m and m.group(1) in keyed_by_case:
            assert render(statement, CLUSTER, DATABASE)[1].endswith(f"{m.group(1)}_local, cityHash64(case_id))")
    # The others are keyed by what their ReplacingMergeTree collapses on (or its Kafka key), never by random.
    assert SHARDING_KEYS == {
        "deadletters": "cityHash64(origin)",
        "deadletter_redrives": "cityHash64(origin)",
        "outcome_daily": "cityHash64(stats_key)",
        "hotspots": "cityHash64(hotspot_id)",
        "schema_migrations": "cityHash64(name)",
    }


@pytest.mark.parametrize(
    ("engine", "args", "expected"),
    [
        ("MergeTree", None, "ReplicatedMergeTree({p}, {r})"),
        ("MergeTree", "", "ReplicatedMergeTree({p}, {r})"),
        ("ReplacingMergeTree", None, "ReplicatedReplacingMergeTree({p}, {r})"),
        ("ReplacingMergeTree", "version", "ReplicatedReplacingMergeTree({p}, {r}, version)"),
        ("ReplacingMergeTree", "version, is_deleted", "ReplicatedReplacingMergeTree({p}, {r}, version, is_deleted)"),
        ("SummingMergeTree", "(a, b)", "ReplicatedSummingMergeTree({p}, {r}, (a, b))"),
        ("AggregatingMergeTree", None, "ReplicatedAggregatingMergeTree({p}, {r})"),
        ("CollapsingMergeTree", "sign", "ReplicatedCollapsingMergeTree({p}, {r}, sign)"),
        ("VersionedCollapsingMergeTree", "sign, v", "ReplicatedVersionedCollapsingMergeTree({p}, {r}, sign, v)"),
    ],
)
def test_each_engine_maps_to_its_replicated_twin(engine: str, args: str | None, expected: str) -> None:
    mapped = replicated_engine(engine, args)
    assert mapped == expected.format(p="'/clickhouse/tables/{shard}/{database}/{table}'", r="'{replica}'")
    statement = "CREATE TABLE t (case_id String, a Int8, b Int8, v UInt8, sign Int8, version UInt8, is_deleted UInt8) "
    formatted(f"{statement}ENGINE = {mapped} ORDER BY case_id")


@pytest.mark.parametrize("engine", ["Memory", "Log", "ReplicatedMergeTree", "Distributed(c, d, t)"])
def test_engines_without_a_replicated_twin_are_refused(engine: str) -> None:
    statement = f"CREATE TABLE IF NOT EXISTS t (case_id String) ENGINE = {engine} ORDER BY case_id"
    with pytest.raises(ClusterDDLError):
        render(statement, CLUSTER, DATABASE)


def test_a_compact_table_statement_renders_like_a_spread_out_one() -> None:
    compact = "CREATE TABLE IF NOT EXISTS t(case_id String,n UInt8)ENGINE=MergeTree()ORDER BY case_id"
    local, distributed = render(compact, CLUSTER, DATABASE)
    assert formatted(local) == formatted(
        f"CREATE TABLE IF NOT EXISTS t_local ON CLUSTER {CLUSTER} (case_id String, n UInt8) "
        "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}') ORDER BY case_id"
    )
    assert distributed.endswith(f"Distributed({CLUSTER}, '{DATABASE}', t_local, cityHash64(case_id))")


def test_a_table_without_a_case_or_a_chosen_key_is_refused() -> None:
    with pytest.raises(ClusterDDLError, match="SHARDING_KEYS"):
        render("CREATE TABLE IF NOT EXISTS t (x String) ENGINE = MergeTree ORDER BY x", CLUSTER, DATABASE)
    with pytest.raises(ClusterDDLError, match="does not have"):
        render("CREATE TABLE IF NOT EXISTS hotspots (x String) ENGINE = MergeTree ORDER BY x", CLUSTER, DATABASE)


def test_a_comment_or_string_that_looks_like_an_engine_is_not_one() -> None:
    statement = (
        "CREATE TABLE IF NOT EXISTS t (case_id String COMMENT 'ENGINE = Memory (', n UInt8) -- ENGINE = Log\n"
        "ENGINE = ReplacingMergeTree(n) ORDER BY case_id"
    )
    local, _ = render(statement, CLUSTER, DATABASE)
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', n)" in local
    assert "COMMENT 'ENGINE = Memory ('" in formatted(local)


def test_views_and_functions_gain_on_cluster_and_keep_their_text() -> None:
    for _, statement in source_statements():
        if re.match(r"CREATE (OR REPLACE )?(VIEW|FUNCTION)", statement):
            (rendered,) = render(statement, CLUSTER, DATABASE)
            head, body = statement.split(" AS", 1)
            assert rendered == f"{head} ON CLUSTER {CLUSTER} AS{body}"


def test_an_alter_changes_the_local_table_then_the_distributed_one() -> None:
    statement = "ALTER TABLE dispatches ADD COLUMN IF NOT EXISTS sla_rule Nullable(String) AFTER place"
    change = "ADD COLUMN IF NOT EXISTS sla_rule Nullable(String) AFTER place"
    assert render(statement, CLUSTER, DATABASE) == [
        f"ALTER TABLE dispatches_local ON CLUSTER {CLUSTER} {change}",
        f"ALTER TABLE dispatches ON CLUSTER {CLUSTER} {change}",
    ]
    two = render("ALTER TABLE t ADD COLUMN a UInt8, DROP COLUMN b", CLUSTER, DATABASE)
    assert [formatted(s) for s in two]
    with pytest.raises(ClusterDDLError, match="column changes"):
        render("ALTER TABLE t MODIFY TTL occurred_at + INTERVAL 1 YEAR", CLUSTER, DATABASE)


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO events VALUES (1)",
        "DROP TABLE events",
        "CREATE MATERIALIZED VIEW mv TO t AS SELECT 1",
        "CREATE TABLE t AS SELECT 1",
        "CREATE VIEW v ON CLUSTER other AS SELECT 1",
        "CREATE TABLE db.t (case_id String) ENGINE = MergeTree ORDER BY case_id",
    ],
)
def test_statements_it_does_not_understand_are_refused(statement: str) -> None:
    with pytest.raises(ClusterDDLError):
        render(statement, CLUSTER, DATABASE)


@pytest.mark.parametrize("name", ["", "a-b", "c; DROP TABLE x", "1st"])
def test_a_cluster_name_must_be_an_identifier(name: str) -> None:
    with pytest.raises(ClusterDDLError):
        render("CREATE VIEW v AS SELECT 1", name, DATABASE)


def test_the_database_is_quoted_as_a_literal() -> None:
    _, distributed = render("CREATE TABLE t (case_id String) ENGINE = MergeTree ORDER BY case_id", CLUSTER, "o'db")
    assert "Distributed(city, 'o\\'db', t_local" in distributed
    formatted(distributed)


class RecordingClient:
    """Stands in for clickhouse-connect's Client: records what migrate sends."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.inserts: list[tuple[str, Any]] = []

    def command(self, sql: str) -> str:
        self.commands.append(sql)
        return DATABASE

    def query(self, sql: str) -> Any:
        return type("Result", (), {"result_rows": []})()

    def insert(self, table: str, data: Any, column_names: Any, settings: Any = None) -> None:
        self.inserts.append((table, settings))


def test_without_a_cluster_migrate_sends_the_files_statements_unchanged() -> None:
    client = RecordingClient()
    migrate(client)  # type: ignore[arg-type]
    assert client.commands == [_LEDGER] + [s for origin, s in source_statements() if origin != "ledger"]
    assert client.inserts and all(settings is None for _, settings in client.inserts)
    assert insert_settings("") == {}


def test_with_a_cluster_migrate_sends_the_rendered_statements() -> None:
    client = RecordingClient()
    migrate(client, cluster=CLUSTER)  # type: ignore[arg-type]
    expected = [r for _, s in source_statements() for r in render(s, CLUSTER, DATABASE)]
    assert client.commands == ["SELECT currentDatabase()", *expected]
    assert all(settings == {"insert_distributed_sync": 1} for _, settings in client.inserts)


def test_the_insert_setting_is_one_the_engine_knows() -> None:
    (name,) = insert_settings(CLUSTER)
    known = chdb.query("SELECT count() FROM system.settings WHERE name = {n:String}", "TSVRaw", params={"n": name})
    assert known.bytes().decode().strip() == "1"


def test_the_cluster_setting_needs_a_server_and_an_identifier() -> None:
    server = "http://u:p@h:8123/alarmflow"
    s = Settings.from_env({"ALARMFLOW_CLICKHOUSE_CLUSTER": "city", "ALARMFLOW_CLICKHOUSE_DSN": server})
    assert s.clickhouse_cluster == "city"
    assert Settings.from_env({}).clickhouse_cluster == ""
    embedded = Settings.from_env({"ALARMFLOW_CLICKHOUSE_CLUSTER": "city"})  # fine for agents and tools
    with pytest.raises(ConfigError, match="needs a ClickHouse server"):
        require_server_for_cluster(embedded)  # what the ClickHouse writer checks before it opens the database
    require_server_for_cluster(s)
    with pytest.raises(ConfigError, match="ALARMFLOW_CLICKHOUSE_CLUSTER"):
        Settings.from_env({"ALARMFLOW_CLICKHOUSE_CLUSTER": "a-b", "ALARMFLOW_CLICKHOUSE_DSN": server})
    assert "ALARMFLOW_CLICKHOUSE_CLUSTER" in env_names()
    for readme in ("README.md", "deploy/README.md"):
        assert "`ALARMFLOW_CLICKHOUSE_CLUSTER`" in (REPO / readme).read_text(encoding="utf-8"), readme


class LedgerClient(RecordingClient):
    """A RecordingClient whose ledger already lists ``done``."""

    def __init__(self, done: list[str]) -> None:
        super().__init__()
        self.done = done

    def query(self, sql: str) -> Any:
        return type("Result", (), {"result_rows": [[name] for name in self.done]})()


@pytest.mark.parametrize("cluster", ["", CLUSTER])
def test_a_gap_in_the_numbering_is_applied_in_order_and_a_file_filling_it_later_is_applied_then(
    cluster: str, tmp_path: Path
) -> None:
    """Helpers number their migrations ahead (0007 may land before 0006): order is by name, gaps are fine."""
    table = "CREATE TABLE IF NOT EXISTS {} (case_id String) ENGINE = MergeTree ORDER BY case_id;\n"
    (tmp_path / "0005_a.sql").write_text(table.format("a"))
    (tmp_path / "0007_c.sql").write_text(table.format("c"))
    first = LedgerClient([])
    assert migrate(first, tmp_path, cluster) == ["0005_a.sql", "0007_c.sql"]  # type: ignore[arg-type]
    (tmp_path / "0006_b.sql").write_text(table.format("b"))
    later = LedgerClient(["0005_a.sql", "0007_c.sql"])
    assert migrate(later, tmp_path, cluster) == ["0006_b.sql"]  # type: ignore[arg-type]
    created = [m.group(1) for c in later.commands if (m := re.search(r"CREATE TABLE IF NOT EXISTS (\w+)", c))]
    names = [n.removesuffix("_local") for n in created if not n.startswith("schema_migrations")]
    assert list(dict.fromkeys(names)) == ["a", "b", "c"]  # every statement again, in name order
