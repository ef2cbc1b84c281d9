"""The projections package's exceptions: one root, transient separated from permanent."""

from __future__ import annotations


class ProjectionError(Exception):
    """Root of every error raised by the projections package."""


class TransientSinkError(ProjectionError):
    """ClickHouse could not take a write right now; retry the same batch with the same token."""


class MigrationError(ProjectionError):
    """A DDL file failed to apply; the named file and statement say which."""


class QueryRejected(ProjectionError):
    """A read-only query tried to write, or ClickHouse refused it."""


class DatabaseBusy(ProjectionError):
    """The embedded database is held by another process (chDB allows one per path)."""


class EngineRefused(QueryRejected):
    """ClickHouse refused an analyst's query; ``code`` is its own error code (164 READONLY, 159 TIMEOUT_EXCEEDED…)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code, self.text = code, text
