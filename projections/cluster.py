"""The ClickHouse cluster path: each statement of ``ddl/`` rendered for a sharded, replicated server. Pure.

With ``ALARMFLOW_CLICKHOUSE_CLUSTER`` set, a table ``t`` becomes two, both created ``ON CLUSTER``:
``t_local``, with the Replicated twin of its engine (``ReplacingMergeTree(version)`` →
``ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', version)``), and
``t`` itself, a ``Distributed`` table over ``t_local`` on every shard. Views and functions keep their text and
gain ``ON CLUSTER``: they read ``t``, so they read across shards unchanged, and the projector inserts into
``t`` as before. An ``ALTER TABLE t`` changes ``t_local`` and ``t``.

Only the forms our DDL uses are understood; anything else is refused with ClusterDDLError rather than
guessed at, so a new kind of statement in ``ddl/`` fails the unit test instead of a deployment.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from projections.errors import ProjectionError

LOCAL_SUFFIX = "_local"
# Macros the server expands per host: {shard} and {replica} from its <macros>, {database} and {table} itself.
REPLICA_PATH = "'/clickhouse/tables/{shard}/{database}/{table}'"
REPLICA_NAME = "'{replica}'"

# Which shard a row goes to. Each key keeps together the rows that must meet: the versions or repeats of a
# row that ReplacingMergeTree collapses (a merge never looks across shards), and a case's facts. A table
# with a case_id is sharded by it, so a case's triage, dispatch, breaches, reassignments and field events
# share a shard; `events.case_id` holds each record's Kafka key (the case for alarms and case events), so
# the raw log follows the same cases and spreads the other records by their own keys.
CASE_KEY = "cityHash64(case_id)"
SHARDING_KEYS = {
    # No case: a rejected message is identified by its origin (topic/partition/offset), and a replay's
    # second dead letter for it (the same origin) must land where the first did.
    "deadletters": "cityHash64(origin)",
    # A dead letter's re-drives with it.
    "deadletter_redrives": "cityHash64(origin)",
    # Every version of one daily aggregate must meet on one shard for ReplacingMergeTree(version) to keep
    # the newest; stats_key is the aggregate's identity (and its topic's Kafka key).
    "outcome_daily": "cityHash64(stats_key)",
    # One hotspot's episodes and reports together (the topic's Kafka key): v_hotspot_history groups them.
    "hotspots": "cityHash64(hotspot_id)",
    # The migrations ledger: one row per DDL file.
    "schema_migrations": "cityHash64(name)",
}

# The embedded path's tables set non_replicated_deduplication_window = N; replicated tables keep the same
# window under its replicated name, so the server's default (1000 blocks before 25.9, 10000 since) does not
# decide it.
_DEDUP_SETTINGS = {"non_replicated_deduplication_window": "replicated_deduplication_window"}

MERGE_TREE_ENGINES = frozenset(
    {
        "MergeTree",
        "ReplacingMergeTree",
        "SummingMergeTree",
        "AggregatingMergeTree",
        "CollapsingMergeTree",
        "VersionedCollapsingMergeTree",
        "GraphiteMergeTree",
        "CoalescingMergeTree",
    }
)
_COLUMN_ALTERS = ("ADD COLUMN", "DROP COLUMN", "MODIFY COLUMN", "RENAME COLUMN", "COMMENT COLUMN", "CLEAR COLUMN")
# Written into statements (ON CLUSTER, Distributed), so a plain identifier.
CLUSTER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ClusterDDLError(ProjectionError):
    """A DDL statement cannot be rendered for a cluster (an unknown form, engine or table)."""


def insert_settings(cluster: str) -> dict[str, int]:
    """Settings every projection insert needs: none on one server; on a cluster, a foreground Distributed insert.

    By default a Distributed table acknowledges an insert once it is queued on the receiving server and
    sends it to the shards later: the projector would commit offsets for rows no shard holds yet, and a
    retry's deduplication would be decided later, away from the insert it belongs to. insert_distributed_sync
    (the old name of distributed_foreground_insert, known to every server version) makes the insert return
    only after every shard has stored its rows, under the batch's insert_deduplication_token."""
    return {"insert_distributed_sync": 1} if cluster else {}


def check_name(cluster: str) -> str:
    if not CLUSTER_NAME.fullmatch(cluster):
        raise ClusterDDLError(f"cluster name {cluster!r}: use letters, digits and underscores")
    return cluster


def render(statement: str, cluster: str, database: str) -> list[str]:
    """The statements that do on ``cluster`` what ``statement`` does on one server; ``database`` is where
    the tables live (the Distributed tables name it)."""
    check_name(cluster)
    text = statement.strip().rstrip(";").strip()
    if _ON_CLUSTER.search(_header(text)):
        raise ClusterDDLError(f"already ON CLUSTER: {_first_line(text)}")
    if m := _CREATE_TABLE.match(text):
        return _table(m, cluster, database)
    if m := _CREATE_VIEW_OR_FUNCTION.match(text):
        return [f"{text[: m.end('name')]} ON CLUSTER {cluster}{text[m.end('name') :]}"]
    if m := _ALTER_TABLE.match(text):
        return _alter(m, cluster)
    raise ClusterDDLError(f"cannot render for a cluster: {_first_line(text)}")


def distributed_engine(cluster: str, database: str, local: str, sharding_key: str) -> str:
    return f"Distributed({cluster}, {_literal(database)}, {local}, {sharding_key})"


def replicated_engine(engine: str, args: str | None) -> str:
    """``engine(args)`` as its Replicated twin, the replica path and name first, then the engine's own args."""
    if engine.startswith("Replicated"):
        raise ClusterDDLError(f"{engine} is already replicated: keep ddl/ written for one server")
    if engine not in MERGE_TREE_ENGINES:
        raise ClusterDDLError(f"engine {engine} has no Replicated twin (only the MergeTree family replicates)")
    own = (args or "").strip()
    return f"Replicated{engine}({REPLICA_PATH}, {REPLICA_NAME}{', ' + own if own else ''})"


def sharding_key(table: str, columns: list[str]) -> str:
    key = SHARDING_KEYS.get(table) or (CASE_KEY if "case_id" in columns else None)
    if key is None:
        raise ClusterDDLError(f"table {table} has no case_id and no entry in SHARDING_KEYS: choose its sharding key")
    used = re.findall(r"\((\w+)\)", key)
    if not set(used) <= set(columns):
        raise ClusterDDLError(f"table {table}: sharding key {key} names a column it does not have")
    return key


# --- parsing --------------------------------------------------------------------------------------------

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_CREATE_TABLE = re.compile(rf"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>{_IDENT})(?=\s*\()", re.I)
_CREATE_VIEW_OR_FUNCTION = re.compile(
    rf"CREATE\s+(?:OR\s+REPLACE\s+)?(?:VIEW|FUNCTION)\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>{_IDENT})(?=\s+AS\b)", re.I
)
_ALTER_TABLE = re.compile(rf"ALTER\s+TABLE\s+(?P<name>{_IDENT})\s+(?P<rest>\S.*)\Z", re.I | re.S)
_ON_CLUSTER = re.compile(r"\bON\s+CLUSTER\b", re.I)
_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<comment>--[^\n]*|/\*.*?\*/)
      | (?P<string>'(?:[^'\\]|\\.|'')*')
      | (?P<quoted>`(?:[^`\\]|\\.|``)*`|"(?:[^"\\]|\\.|"")*")
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<number>[0-9][A-Za-z0-9_.]*)
      | (?P<punct>.)""",
    re.S | re.X,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    start: int
    end: int
    depth: int  # parentheses open before it (a closing parenthesis counts its own level)


def _tokens(text: str) -> Iterator[_Token]:
    """Words, strings and punctuation with their nesting depth; whitespace and comments dropped."""
    depth = 0
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "punct"
        if kind in ("space", "comment"):
            continue
        if m.group() == ")":
            depth -= 1
        yield _Token(kind, m.group(), m.start(), m.end(), depth)
        if m.group() == "(":
            depth += 1
    if depth != 0:
        raise ClusterDDLError(f"unbalanced parentheses: {_first_line(text)}")


def _header(text: str) -> str:
    """The statement up to its first parenthesis or AS: where an ON CLUSTER would be."""
    m = re.search(r"\(|\bAS\b", text, re.I)
    return text[: m.start()] if m else text


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def _closing(tokens: list[_Token], opening: int) -> int:
    """Index of the parenthesis that closes ``tokens[opening]``."""
    depth = tokens[opening].depth
    for i in range(opening + 1, len(tokens)):
        if tokens[i].text == ")" and tokens[i].depth == depth:
            return i
    raise ClusterDDLError("unbalanced parentheses")


def _columns(body: list[_Token]) -> list[str]:
    """Column names of a column list's tokens (inside its parentheses): the first word of each element."""
    names, first = [], True
    for t in body:
        if first and t.kind in ("word", "quoted"):
            name = t.text.strip('`"')
            if name.upper() not in ("INDEX", "PROJECTION", "CONSTRAINT"):
                names.append(name)
            first = False
        elif t.text == "," and t.depth == body[0].depth:
            first = True
    return names


def _table(m: re.Match[str], cluster: str, database: str) -> list[str]:
    text, name = m.string, m.group("name")
    tokens = list(_tokens(text))
    opening = next(i for i, t in enumerate(tokens) if t.start >= m.end("name") and t.text == "(")
    closing = _closing(tokens, opening)
    columns = _columns(tokens[opening + 1 : closing])
    tail = tokens[closing + 1 :]
    e = next((i for i, t in enumerate(tail) if t.depth == 0 and t.text.upper() == "ENGINE"), None)
    if e is None:
        raise ClusterDDLError(f"table {name} has no ENGINE clause")
    i = e + 2 if tail[e + 1].text == "=" else e + 1
    engine, args, end = tail[i].text, None, tail[i].end
    if i + 1 < len(tail) and tail[i + 1].text == "(":
        close = _closing(tail, i + 1)
        args, end = text[tail[i + 1].end : tail[close].start], tail[close].end
    rest = _dedup_settings(text, tail, end)
    local = name + LOCAL_SUFFIX
    create_local = (
        f"{text[: m.start('name')]}{local} ON CLUSTER {cluster}{text[m.end('name') : tail[e].start]}"
        f"ENGINE = {replicated_engine(engine, args)}{rest}"
    )
    create_distributed = (
        f"{text[: m.end('name')]} ON CLUSTER {cluster} AS {local}\n"
        f"ENGINE = {distributed_engine(cluster, database, local, sharding_key(name, columns))}"
    )
    return [create_local, create_distributed]


def _dedup_settings(text: str, tail: list[_Token], after: int) -> str:
    """The table's clauses after its engine, with deduplication settings given their replicated names."""
    out, at, in_settings = [], after, False
    for t in tail:
        if t.start < after or t.depth != 0:
            continue
        in_settings = in_settings or t.text.upper() == "SETTINGS"
        if in_settings and t.kind == "word" and t.text in _DEDUP_SETTINGS:
            out += [text[at : t.start], _DEDUP_SETTINGS[t.text]]
            at = t.end
    return "".join([*out, text[at:]])


def _alter(m: re.Match[str], cluster: str) -> list[str]:
    name, rest = m.group("name"), m.group("rest")
    tokens = list(_tokens(rest))
    starts = [0] + [i + 1 for i, t in enumerate(tokens) if t.text == "," and t.depth == 0]
    for s in starts:
        words = " ".join(t.text.upper() for t in tokens[s : s + 2])
        if words not in _COLUMN_ALTERS:
            raise ClusterDDLError(f"ALTER TABLE {name}: only column changes are rendered for a cluster, not {words}")
    # The columns change on every replica of every shard first, then on the Distributed table that reads them.
    return [f"ALTER TABLE {t} ON CLUSTER {cluster} {rest}" for t in (name + LOCAL_SUFFIX, name)]


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
