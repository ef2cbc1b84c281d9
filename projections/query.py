"""Read-only queries for analysts and ops, with ClickHouse enforcing the read-only part."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from projections.errors import ProjectionError, QueryRejected


@dataclass(frozen=True)
class QueryResult:
    """Column names and rows of plain JSON-able values."""

    columns: list[str]
    rows: list[list[Any]]


def plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def iso(at: datetime) -> str:
    """ISO-8601 with the zone always written: ``Z`` for UTC, ``+08:00`` for local time; a naive value is a bug."""
    if at.tzinfo is None:
        raise ProjectionError(f"a timestamp without a zone reached the output: {at!r}")
    text = at.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def run_readonly(client: Client, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
    """Run ``sql`` with ClickHouse's ``readonly=1``, so no write can slip through."""
    try:
        result = client.query(sql, parameters=dict(parameters or {}), settings={"readonly": 1})
    except ClickHouseError as exc:
        raise QueryRejected(str(exc).strip()) from exc
    return QueryResult(list(result.column_names), [[plain(v) for v in row] for row in result.result_rows])
