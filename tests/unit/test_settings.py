"""One settings object from ALARMFLOW_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.errors import ConfigError
from streams.settings import Settings, env_names


def test_every_field_reads_its_variable(tmp_path: Path) -> None:
    env = {
        "ALARMFLOW_KAFKA_BOOTSTRAP": "127.0.0.1:1234",
        "ALARMFLOW_PARTITIONS": "8",
        "ALARMFLOW_TOPIC_PREFIX": "qt",
        "ALARMFLOW_VAR_DIR": str(tmp_path),
    }
    s = Settings.from_env(env)
    assert (s.kafka_bootstrap, s.partitions, s.topic("alarms")) == ("127.0.0.1:1234", 8, "qt.alarms")
    assert s.dsn == f"chdb://{tmp_path.resolve()}/clickhouse"
    assert Settings.from_env({"ALARMFLOW_CLICKHOUSE_DSN": "http://u:p@h:8123/db"}).dsn == "http://u:p@h:8123/db"
    assert "ALARMFLOW_CLICKHOUSE_DSN" in env_names()


def test_bad_values_name_the_variable() -> None:
    with pytest.raises(ConfigError, match="ALARMFLOW_PARTITIONS"):
        Settings.from_env({"ALARMFLOW_PARTITIONS": "many"})


def test_the_phone_key_comes_from_the_environment_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ALARMFLOW_PHONE_HMAC_KEY"):
        Settings.from_env({}).phone_key()
    key_file = tmp_path / "key"
    key_file.write_text("from-a-file-0123456789\n")
    assert Settings.from_env({"ALARMFLOW_PHONE_HMAC_KEY_FILE": str(key_file)}).phone_key() == b"from-a-file-0123456789"
    secret = Settings.from_env({"ALARMFLOW_PHONE_HMAC_KEY": "do-not-print-me-0123"})
    assert "do-not-print-me" not in repr(secret)


def test_repeated_warnings_are_summarised_once_per_window() -> None:
    import logging

    from streams.logs import RepeatFilter

    now = [0.0]
    f = RepeatFilter(window_s=30, clock=lambda: now[0])

    def record(msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
        return logging.LogRecord("aiokafka", level, __file__, 1, msg, args, None)

    lines = []
    for second in range(100):  # a broker down for 100 s, each client complaining ten times a second
        now[0] = float(second)
        for node in range(10):
            r = record("Unable connect to node with id %s: %s", node, "refused")
            if f.filter(r):
                lines.append(r.getMessage())
    assert len(lines) == 4  # at 0, 30, 60 and 90 s
    assert lines[0] == "Unable connect to node with id 0: refused"
    assert lines[1].endswith("[299 more like this in the 30 s before]")
    assert f.filter(record("another message")) and f.filter(record("x", level=logging.INFO))
    assert all(f.filter(record("x", level=logging.INFO)) for _ in range(5))  # below WARNING: never held back
