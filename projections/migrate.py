"""Apply ``ddl/NNNN_name.sql`` in order at every start; ``schema_migrations`` records when each first ran.

Every statement is idempotent (``IF NOT EXISTS``), so dropping tables and restarting rebuilds them,
and a replay then refills them: the tables are projections of the topics. On a cluster, each statement is
first rendered for it (``projections.cluster``); with no cluster, the files' statements run as written.
"""

from __future__ import annotations

from pathlib import Path

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from projections.cluster import ClusterDDLError, insert_settings, render
from projections.errors import MigrationError

DDL_DIR = Path(__file__).with_name("ddl")

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations
(name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
ENGINE = ReplacingMergeTree ORDER BY name
"""


def statements(path: Path) -> list[str]:
    """Split a DDL file on ``;`` at line ends; the files keep one statement per block."""
    text = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("--"))
    return [s.strip() for s in text.split(";\n") if s.strip().rstrip(";")]


def plan(statement: str, cluster: str = "", database: str = "") -> list[str]:
    """What runs for one statement: itself on one server, its rendering ON CLUSTER on a cluster."""
    return render(statement, cluster, database) if cluster else [statement]


def migrate(client: Client, ddl_dir: Path = DDL_DIR, cluster: str = "") -> list[str]:
    """Bring the database up to date; returns the files applied for the first time."""
    database = str(client.command("SELECT currentDatabase()")) if cluster else ""
    for statement in plan(_LEDGER, cluster, database):
        client.command(statement)
    done = {row[0] for row in client.query("SELECT name FROM schema_migrations").result_rows}
    applied = []
    for path in sorted(ddl_dir.glob("*.sql")):
        for statement in statements(path):
            shown = statement
            try:
                for command in plan(statement.rstrip(";"), cluster, database):
                    shown = command if cluster else statement
                    client.command(command)
            except (ClickHouseError, ClusterDDLError) as exc:
                raise MigrationError(f"{path.name}: {exc}\n--- statement ---\n{shown}") from exc
        if path.name not in done:
            settings = insert_settings(cluster) or None
            client.insert("schema_migrations", [[path.name]], column_names=["name"], settings=settings)
            applied.append(path.name)
    return applied
