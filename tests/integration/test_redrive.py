"""Dead-letter re-drive on the real broker: alarms of a category the reference data does not know are dead-lettered;
a re-drive before the fix is dead-lettered again; once the category is added and the worker restarted, a re-drive
dispatches each alarm exactly once (one re-sent upstream meanwhile is skipped), and a second re-drive changes
nothing and says so."""

from __future__ import annotations

import json
import shutil
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from schemas.codec import Codec
from streams.reference_files import DEFAULT_DIRECTORY
from tests.integration.conftest import Stack
from tests.integration.test_sla import _noise_alarm

CODEC = Codec()
NEW_CATEGORY = "noise.square_dance"


def _cli(stack: Stack, *args: str) -> str:
    out = stack.cli_out("deadletter", *args)
    print(out)
    return out


def _redrives_on_topic(stack: Stack) -> list[str]:
    events = [CODEC.decode(m.value) for m in stack.read("deadletter")]
    return [e.fields["origin"] for e in events if e.type == "DeadLetterRedriven"]


def test_redrive_after_the_reference_data_is_fixed_dispatches_each_alarm_exactly_once(
    stack: Stack, tmp_path: Path
) -> None:
    district = tmp_path / "district"
    shutil.copytree(DEFAULT_DIRECTORY, district)
    env = {"ALARMFLOW_DISTRICT_DIR": str(district)}
    worker = stack.start_worker(**env)
    start = datetime.now(UTC) - timedelta(minutes=5)
    alarms = [_noise_alarm(f"SQ-{i}", start + timedelta(seconds=i)) for i in range(3)]
    for a in alarms:
        a["category"] = NEW_CATEGORY
    known = _noise_alarm("KNOWN-1", start)
    stack.publish([*alarms, known])
    stack.caught_up()
    letters = stack.sql("SELECT origin, error_class FROM v_deadletters ORDER BY origin")
    assert [c for _, c in letters] == ["UnknownCategory"] * 3
    assert stack.scalar("SELECT count() FROM dispatches") == 1  # the known alarm only

    # Re-driven before the fix: dead-lettered again, with the reason, and shown so.
    first = letters[0][0]
    out = _cli(stack, "redrive", "--id", first)
    assert f"re-drove {first} as " in out and "1 re-driven, 0 skipped" in out
    stack.caught_up()
    ((origin, outcome, again_class),) = stack.sql("SELECT origin, outcome, again_class FROM v_deadletter_redrives")
    assert (origin, outcome, again_class) == (first, "dead-lettered again", "UnknownCategory")

    # The fix: the category joins the taxonomy; the worker restarts with it.
    categories = json.loads((district / "categories.json").read_text())
    categories.append({"code": NEW_CATEGORY, "name": "广场舞噪音", "disposition": "NON_POLICE", "team": "GRID_WORKER"})
    (district / "categories.json").write_text(json.dumps(categories, ensure_ascii=False))
    stack.stop(worker, signal.SIGTERM)
    stack.start_worker(**env)
    stack.publish([alarms[2]])  # upstream re-sends one of them meanwhile: it is dispatched now
    stack.caught_up()
    assert stack.sql("SELECT case_id FROM dispatches WHERE case_id LIKE 'SQ-%'") == [["SQ-2"]]

    dry = _cli(stack, "redrive", "--class", "UnknownCategory", "--dry-run")
    assert dry.count("would re-drive") == 2  # SQ-1, and SQ-0 as dead-lettered again (its first letter is done)
    assert "dry run: 2 to re-drive, 2 to skip; nothing sent" in dry
    assert len(_redrives_on_topic(stack)) == 1

    out = _cli(stack, "redrive", "--class", "UnknownCategory")
    assert f"skip {first} (UnknownCategory): already re-driven" in out
    assert "a copy was processed meanwhile" in out  # SQ-2
    assert out.count("re-drove ") == 2 and "2 re-driven, 2 skipped" in out
    stack.caught_up()
    dispatched = Counter(r[0] for r in stack.sql("SELECT case_id FROM dispatches WHERE case_id LIKE 'SQ-%'"))
    assert dispatched == {"SQ-0": 1, "SQ-1": 1, "SQ-2": 1}
    outcomes = sorted(tuple(r) for r in stack.sql("SELECT outcome, event_type FROM v_deadletter_redrives"))
    assert outcomes == [("accepted", "AlarmReceived")] * 2 + [("dead-lettered again", "AlarmReceived")]
    status = dict(stack.sql("SELECT origin, redrives FROM v_deadletter_status"))
    assert list(status.values()).count(1) == 3  # SQ-0's first letter, its second one, SQ-1's

    # Twice changes nothing, and says so.
    again = _cli(stack, "redrive")
    assert "0 re-driven, 4 skipped" in again and again.count("skip ") == 4
    stack.caught_up()
    assert len(_redrives_on_topic(stack)) == 3
    assert Counter(r[0] for r in stack.sql("SELECT case_id FROM dispatches WHERE case_id LIKE 'SQ-%'")) == dispatched
    assert stack.scalar("SELECT count() FROM sla_breaches WHERE case_id LIKE 'SQ-%'") == stack.scalar(
        "SELECT uniqExact(case_id, stage) FROM sla_breaches WHERE case_id LIKE 'SQ-%'"
    )
    listed = _cli(stack, "list")
    assert listed.count("\tre-driven as ") == 3 and "4 dead-lettered messages" in listed
