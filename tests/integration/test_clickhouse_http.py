"""ClickHouse's HTTP interface on the embedded database, through clients nobody here wrote, against a running worker.

One projector worker (it alone holds the database) serves the module; the data is a known stream published to the
real broker, so every answer is compared with what was sent. `make test` installs the Node and JDBC clients
(`make clients`); a missing client fails its test, it is never skipped.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import json
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from streams.kafka_admin import wait_caught_up
from tests.factories import stream
from tests.integration.conftest import REPO, Stack, make_stack

pytestmark = pytest.mark.integration
USER, PASSWORD = "analyst", "s3cret-for-tests"
EVENTS = stream(25, seed=12)
BY_TYPE = Counter(e["type"] for e in EVENTS)
ALARMS = sorted(e["alarm_id"] for e in EVENTS if e["type"] == "AlarmReceived")
NODE = REPO / "tests" / "clients" / "node"
JDBC = REPO / "tests" / "clients" / "jdbc"


@pytest.fixture(scope="module")
def served(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = make_stack(
        tmp_path_factory.mktemp("chhttp"),
        ALARMFLOW_ROLE="projector",  # the events table then holds exactly what was published
        ALARMFLOW_CLICKHOUSE_HTTP_PASSWORD=PASSWORD,
        ALARMFLOW_ANALYST_MAX_RESULT_ROWS="5000",
        ALARMFLOW_ANALYST_MAX_EXECUTION_S="2",
        ALARMFLOW_ANALYST_MAX_MEMORY_BYTES=str(200 * 1024 * 1024),
    )
    try:
        stack.start_worker()
        stack.publish(EVENTS)
        group = f"{stack.settings.app_id}-projector"  # no agents here: only the projector's group reads
        groups = {group: stack.settings.consumer_groups()[group]}
        asyncio.run(wait_caught_up(stack.settings.kafka_bootstrap, groups, 120))
        assert stack.scalar("SELECT count() FROM events") == len(EVENTS), stack.worker_log()
        yield stack
    finally:  # also when the set-up fails: no worker outlives the module
        for proc in stack.workers:
            stack.stop(proc, signal.SIGKILL)


def _url(stack: Stack) -> str:
    return stack.settings.clickhouse_http_url


def curl(stack: Stack, *args: str, path: str = "/") -> tuple[int, dict[str, str], bytes]:
    """curl's status, response headers (lower-case names) and raw body."""
    out = subprocess.run(
        ["curl", "-sS", "-D", "-", "-o", "/dev/stdout", *args, _url(stack) + path],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def auth() -> list[str]:
    return ["-u", f"{USER}:{PASSWORD}"]


# --- clickhouse-connect ---------------------------------------------------------------------------------------------


def test_clickhouse_connect_query_df_arrow_and_server_side_parameters(served: Stack) -> None:
    client = clickhouse_connect.get_client(host="127.0.0.1", port=served.settings.clickhouse_http_port, username=USER,
                                           password=PASSWORD)  # fmt: skip
    try:
        result = client.query("SELECT type, count() FROM events GROUP BY type ORDER BY type")
        assert dict(result.result_rows) == BY_TYPE
        picked = ALARMS[:3]
        bound = client.query(
            "SELECT count() FROM events WHERE type = {t:String} AND case_id IN {ids:Array(String)}",
            parameters={"t": "AlarmReceived", "ids": picked},
        )
        assert bound.result_rows == [(len(picked),)]
        # Parameters too long for a URL: clickhouse-connect sends the query and them as multipart/form-data.
        many = [*picked, *(f"no-such-case-{i:05d}" for i in range(5000))]
        assert client.query(
            "SELECT count() FROM events WHERE type = {t:String} AND case_id IN {ids:Array(String)}",
            parameters={"t": "AlarmReceived", "ids": many},
        ).result_rows == [(len(picked),)]
        frame = client.query_df("SELECT event_id, type FROM events ORDER BY event_id")
        assert list(frame.columns) == ["event_id", "type"] and sorted(frame["event_id"]) == sorted(
            e["event_id"] for e in EVENTS
        )
        table = client.query_arrow("SELECT type, count() AS n FROM events GROUP BY type ORDER BY type")
        assert dict(zip(table.column("type").to_pylist(), table.column("n").to_pylist(), strict=True)) == BY_TYPE
        with pytest.raises(DatabaseError, match="READONLY"):
            client.command("TRUNCATE TABLE events")
        assert client.query("SELECT count() FROM events").result_rows == [(len(EVENTS),)]
    finally:
        client.close()


# --- @clickhouse/client ---------------------------------------------------------------------------------------------


def test_official_javascript_client(served: Stack) -> None:
    assert (NODE / "node_modules" / "@clickhouse" / "client").is_dir(), "run `make clients` (npm ci) first"
    out = subprocess.run(
        ["node", "check.mjs", _url(served), USER, PASSWORD, "AlarmReceived"],
        cwd=NODE, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer["ping"] is True
    assert answer["query"] == [{"n": 1000, "s": "499500"}]
    assert answer["param"] == [{"n": BY_TYPE["AlarmReceived"]}]
    assert {"events", "cases", "v_sla_compliance"} <= set(answer["tables"])
    assert answer["drop"]["code"] == "164", answer["drop"]


# --- JDBC -----------------------------------------------------------------------------------------------------------


def test_official_jdbc_driver(served: Stack) -> None:
    libs = JDBC / "target" / "lib"
    assert (JDBC / "target" / "classes").is_dir() and any(libs.glob("clickhouse-jdbc-0.10.0*.jar")), (
        "run `make clients` (mvn package) first"
    )
    url = f"jdbc:clickhouse://127.0.0.1:{served.settings.clickhouse_http_port}/default"
    out = subprocess.run(
        ["java", "-cp", f"{JDBC / 'target' / 'classes'}:{libs}/*", "alarmflow.JdbcCheck", url, USER, PASSWORD,
         "AlarmReceived"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [line.split("\t") for line in out.stdout.splitlines()]
    facts = {line[0]: line[1:] for line in lines if line[0] not in ("table", "column")}
    assert facts["product"] == ["ClickHouse"]
    assert facts["query"] == ["1000", "499500"]
    assert facts["count"] == [str(len(EVENTS))]
    assert facts["prepared"] == ["AlarmReceived", str(BY_TYPE["AlarmReceived"])]
    tables = {(t[1], t[3]): t[4] for t in lines if t[0] == "table"}
    assert tables[("default", "events")] == "TABLE" and tables[("default", "cases")] == "VIEW"
    columns = [(c[2], c[3]) for c in lines if c[0] == "column"]
    assert columns[:3] == [("event_id", "String"), ("type", "LowCardinality(String)"), ("case_id", "String")]
    assert facts["write"][0] == "refused" and "164" in facts["write"][1] + "".join(facts["write"][1:])


# --- curl, every format ---------------------------------------------------------------------------------------------

SQL = "SELECT type, toUInt64(count()) AS n FROM events GROUP BY type ORDER BY type"


def _native_header(body: bytes) -> tuple[int, int, str, str]:
    """Native: columns and rows as varints, then the first column's name and type (length-prefixed)."""
    pos = 0

    def varint() -> int:
        nonlocal pos
        value, shift = 0, 0
        while True:
            byte = body[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    def string() -> str:
        nonlocal pos
        n = varint()
        pos += n
        return body[pos - n : pos].decode()

    columns, rows = varint(), varint()
    return columns, rows, string(), string()


def _rowbinary_header(body: bytes) -> tuple[list[str], list[str]]:
    n = body[0]
    pos, items = 1, []
    for _ in range(2 * n):
        size = body[pos]
        items.append(body[pos + 1 : pos + 1 + size].decode())
        pos += 1 + size
    return items[:n], items[n:]


def test_curl_every_format(served: Stack) -> None:
    expected = sorted(BY_TYPE.items())
    parsed: dict[str, Any] = {}
    for fmt in ("TabSeparated", "TabSeparatedWithNames", "CSVWithNames", "JSON", "JSONEachRow", "JSONCompact",
                "Native", "RowBinaryWithNamesAndTypes", "Arrow", "ArrowStream", "Parquet"):  # fmt: skip
        status, headers, body = curl(served, *auth(), "--data-binary", f"{SQL} FORMAT {fmt}")
        assert status == 200, body
        assert headers["x-clickhouse-format"] == fmt
        parsed[fmt] = body
    assert [tuple(r.split("\t")) for r in parsed["TabSeparated"].decode().splitlines()] == [
        (t, str(n)) for t, n in expected
    ]
    assert parsed["TabSeparatedWithNames"].decode().splitlines()[0] == "type\tn"
    assert list(csv.reader(io.StringIO(parsed["CSVWithNames"].decode())))[1:] == [[t, str(n)] for t, n in expected]
    doc = json.loads(parsed["JSON"])
    assert [m["name"] for m in doc["meta"]] == ["type", "n"] and doc["rows"] == len(expected)
    assert [(r["type"], int(r["n"])) for r in doc["data"]] == expected
    each = [json.loads(line) for line in parsed["JSONEachRow"].decode().splitlines()]
    assert [(r["type"], int(r["n"])) for r in each] == expected
    assert [(t, int(n)) for t, n in json.loads(parsed["JSONCompact"])["data"]] == expected
    assert _native_header(parsed["Native"]) == (2, len(expected), "type", "LowCardinality(String)")
    names_types = (["type", "n"], ["LowCardinality(String)", "UInt64"])
    assert _rowbinary_header(parsed["RowBinaryWithNamesAndTypes"]) == names_types
    for table in (
        pa.ipc.open_file(pa.BufferReader(parsed["Arrow"])).read_all(),
        pa.ipc.open_stream(pa.BufferReader(parsed["ArrowStream"])).read_all(),
        pq.read_table(pa.BufferReader(parsed["Parquet"])),
    ):
        rows = zip(table.column("type").to_pylist(), table.column("n").to_pylist(), strict=True)
        assert [(t.decode() if isinstance(t, bytes) else t, n) for t, n in rows] == expected


def test_curl_get_post_parameters_headers_and_compression(served: Stack) -> None:
    for path in ("/ping", "/"):  # health checks answer without credentials, as ClickHouse's do
        status, _, body = curl(served, path=path)
        assert (status, body) == (200, b"Ok.\n")
    query = "SELECT count() FROM events WHERE type = {t:String}"
    # GET with ?query=, param_<name>, default_format, database, query_id; the X-ClickHouse-User/-Key headers
    query_id = f"analyst-{uuid.uuid4()}"
    status, headers, body = curl(
        served, "-G", "--data-urlencode", f"query={query}", "--data-urlencode", "param_t=AlarmReceived",
        "-d", "default_format=JSONEachRow", "-d", "database=default", "-d", f"query_id={query_id}",
        "-H", f"X-ClickHouse-User: {USER}", "-H", f"X-ClickHouse-Key: {PASSWORD}",
    )  # fmt: skip
    assert status == 200, body
    assert json.loads(body) == {"count()": BY_TYPE["AlarmReceived"]}
    assert headers["x-clickhouse-query-id"] == query_id and headers["x-clickhouse-format"] == "JSONEachRow"
    summary = json.loads(headers["x-clickhouse-summary"])
    assert summary["result_rows"] == "1" and int(summary["read_rows"]) > 0 and "x-clickhouse-timezone" in headers
    # the query's start in ?query= and its end in the body, as ClickHouse reads them
    status, _, body = curl(served, *auth(), "--data-binary", "events WHERE type = 'CaseClosed'",
                           "--url-query", "query=SELECT count() FROM")  # fmt: skip
    assert (status, body) == (200, f"{BY_TYPE['CaseClosed']}\n".encode())
    # a multipart/form-data body: the query and its parameters as fields; an external data table is refused
    status, _, body = curl(served, *auth(), "-F", f"query={query}", "-F", "param_t=CaseClosed")
    assert (status, body) == (200, f"{BY_TYPE['CaseClosed']}\n".encode())
    status, _, body = curl(served, *auth(), "-F", "query=SELECT * FROM t", "-F", "t=@/etc/hostname")
    assert status == 501 and b"Code: 48." in body and b"external data" in body, body
    # a setting a read-only user may pass: the one in force
    status, _, body = curl(served, *auth(), "--data-binary", "SELECT getSetting('max_result_rows')",
                           "--url-query", "max_result_rows=5000")  # fmt: skip
    assert (status, body) == (200, b"5000\n")
    # gzip when enable_http_compression=1 and the client accepts it; none when it does not
    status, headers, body = curl(served, *auth(), "-H", "Accept-Encoding: gzip", "--data-binary", SQL,
                                 "--url-query", "enable_http_compression=1")  # fmt: skip
    assert status == 200 and headers["content-encoding"] == "gzip"
    plain = gzip.decompress(body)
    assert plain.decode().splitlines()[0].split("\t")[0] == sorted(BY_TYPE)[0]
    status, headers, body = curl(served, *auth(), "--data-binary", SQL)
    assert "content-encoding" not in headers and body == plain


def test_wrong_credentials_get_clickhouse_error(served: Stack) -> None:
    for args in (
        ["-u", f"{USER}:wrong"],
        ["-u", f"intruder:{PASSWORD}"],
        ["-H", f"X-ClickHouse-User: {USER}", "-H", "X-ClickHouse-Key: wrong"],
        [],  # no credentials: ClickHouse's "default" user, which is not ours
    ):
        status, headers, body = curl(served, *args, "--data-binary", "SELECT 1")
        assert status == 403 and headers["x-clickhouse-exception-code"] == "516", (args, body)
        assert b"Code: 516. DB::Exception:" in body and b"Authentication failed" in body
        assert b"(AUTHENTICATION_FAILED)" in body


REFUSED = [
    "INSERT INTO events (event_id) VALUES ('x')",
    "CREATE TABLE intruder (a UInt8) ENGINE = Memory",
    "DROP TABLE events",
    "ALTER TABLE events DELETE WHERE 1",
    "TRUNCATE TABLE events",
    "ATTACH TABLE intruder",
    "SET max_execution_time = 1000",
    "SELECT 1 SETTINGS max_result_rows = 0",
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')",
    "INSERT INTO FUNCTION file('/tmp/alarmflow-intruder.tsv', 'TSV') SELECT 1",
]


@pytest.mark.parametrize("sql", REFUSED)
def test_engine_refuses_what_a_read_only_user_may_not_do(served: Stack, sql: str) -> None:
    status, headers, body = curl(served, *auth(), "--data-binary", sql)
    assert status == 403 and headers["x-clickhouse-exception-code"] == "164", body
    assert body.startswith(b"Code: 164. DB::Exception:") and b"(READONLY)" in body
    # a setting a client passes in the URL goes to the engine too, which refuses to lift a limit
    if sql.startswith("SET"):
        status, headers, body = curl(served, *auth(), "--data-binary", "SELECT 1",
                                     "--url-query", "max_execution_time=1000")  # fmt: skip
        assert (status, headers["x-clickhouse-exception-code"]) == (403, "164"), body
    assert served.scalar("SELECT count() FROM events") == len(EVENTS)


@pytest.mark.parametrize(
    "sql",
    ["SYSTEM STOP MERGES", "system stop ttl merges", "SYSTEM FLUSH LOGS", "/* x */ KILL QUERY WHERE 1",
     "SELECT 1; SYSTEM STOP MOVES"],
)
def test_statements_clickhouse_governs_by_grants_are_denied(served: Stack, sql: str) -> None:
    """readonly=1 lets these through (ClickHouse checks grants for them, and chDB's one user has them all). Sent twice:
    the second time the statement's kind is the one remembered from the first parse."""
    code = "62" if ";" in sql else "497"  # several statements in one request: a syntax error, as in ClickHouse
    for _ in range(2):
        status, headers, body = curl(served, *auth(), "--data-binary", sql)
        assert (status, headers["x-clickhouse-exception-code"]) == (400 if code == "62" else 403, code), body
        assert body.startswith(f"Code: {code}. DB::Exception:".encode())


@pytest.mark.parametrize(
    ("sql", "code", "name", "status"),
    [
        ("SELECT number FROM numbers(100000)", "396", "TOO_MANY_ROWS_OR_BYTES", 500),
        ("SELECT count() FROM numbers(100000000000)", "159", "TIMEOUT_EXCEEDED", 408),
        ("SELECT length(range(100000000))", "241", "MEMORY_LIMIT_EXCEEDED", 500),
        ("SELECT * FROM no_such_table", "60", "UNKNOWN_TABLE", 404),
        ("SELEKT 1", "62", "SYNTAX_ERROR", 400),
    ],
)
def test_limits_and_errors_come_back_as_clickhouse_errors(
    served: Stack, sql: str, code: str, name: str, status: int
) -> None:
    got, headers, body = curl(served, *auth(), "--data-binary", sql)
    assert (got, headers["x-clickhouse-exception-code"]) == (status, code), body
    assert body.startswith(f"Code: {code}. DB::Exception:".encode()) and f"({name})".encode() in body


def test_alarmflow_query_uses_the_interface(served: Stack, tmp_path: Path) -> None:
    """The CLI reaches the database only through the worker's interface (the worker holds the path)."""
    env = {**served.env}
    sql = "SELECT count() AS n FROM events WHERE type = {t:String}"
    out = served.cli_out("query", sql, "--param", "t=AlarmReceived", "--format", "json")
    assert json.loads(out) == [{"n": BY_TYPE["AlarmReceived"]}]
    wrong = subprocess.run(
        [sys.executable, "-m", "streams.cli", "query", "SELECT 1"],
        env={**env, "ALARMFLOW_CLICKHOUSE_HTTP_PASSWORD": "wrong"}, cwd=REPO, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert wrong.returncode != 0 and "516" in wrong.stderr
