"""The analysts' engine on a real embedded database: statement kinds remembered by text, within a bound."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from projections import analyst
from projections.analyst import AnalystEngine, AnalystLimits
from projections.client import opened
from projections.errors import EngineRefused


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[AnalystEngine]:
    with opened(f"chdb://{tmp_path}") as client:
        client.command("CREATE TABLE t (x UInt8) ENGINE = MergeTree ORDER BY x")
        client.command("INSERT INTO t VALUES (1), (2)")
        engine = AnalystEngine(tmp_path, AnalystLimits())
        try:
            yield engine
        finally:
            engine.close()


def test_a_denied_kind_stays_denied_and_the_memory_of_kinds_is_bounded(
    engine: AnalystEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analyst, "KINDS_KEPT", 2)
    for _ in range(2):
        with pytest.raises(EngineRefused) as refused:
            engine.run("SYSTEM STOP MERGES", "TabSeparated")
        assert refused.value.code == 497
    answers = [engine.run(f"SELECT count() + {i} FROM t", "TabSeparated").body for i in range(5)]
    assert answers == [f"{2 + i}\n".encode() for i in range(5)]
    assert 1 <= len(engine._kinds) <= 2
