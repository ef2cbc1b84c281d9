"""Dead-letter re-drive: send a dead letter's original bytes to their original topic again, once.

A dead letter is fixed outside the message (the reference data gains a category, a consumer is corrected), then
re-driven. Each re-drive is itself a fact: a DeadLetterRedriven on the dead-letter topic, published after the
broker acknowledged the re-sent record, naming where it went. A dead letter with such a record is not sent again.
Downstream recognises what it has already processed (the projector by event id, triage by alarm id, the case
engine by event id), so a copy that upstream re-sent meanwhile, or a re-drive repeated after a crash between the
two sends, changes nothing there either; the plan checks ClickHouse for such copies first and says so.

``plan`` is pure; ``load``, ``already_processed`` and ``execute`` do the I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from projections.errors import ProjectionError
from schemas.codec import Codec
from schemas.errors import SchemaError
from schemas.event import Event
from streams.kafka_io import producer, read_topic
from streams.query_client import query
from streams.settings import Settings

REDRIVE_NAMESPACE = uuid.UUID("2b1f3c4d-8e9a-4b7c-a1d2-e3f405162738")
REDRIVE_SOURCE = "alarmflow.redrive"
# Headers on a re-sent record: which dead letter it re-drives, where that dead letter is, and when.
HEADER_OF = "alarmflow-redrive-of"
HEADER_DEADLETTER = "alarmflow-redrive-deadletter"
HEADER_AT = "alarmflow-redriven-at"


@dataclass(frozen=True)
class Letter:
    """A DeadLettered record as read back from the dead-letter topic."""

    origin: str
    event_id: str
    error_class: str
    reason: str
    source_topic: str
    source_key: bytes | None
    payload: bytes
    at: str  # its own coordinates in the dead-letter topic
    dead_lettered_at: datetime  # its append time there

    @property
    def deadletter_coordinates(self) -> tuple[str, int, int]:
        topic, partition, offset = self.at.rsplit("/", 2)
        return topic, int(partition), int(offset)


@dataclass(frozen=True)
class Done:
    """A DeadLetterRedriven read back: the origin was re-driven at this time, as this record."""

    origin: str
    at: datetime
    redriven_as: str


@dataclass(frozen=True)
class Filters:
    """Which dead letters to re-drive; an empty filter selects all."""

    classes: frozenset[str] = frozenset()
    source_topics: frozenset[str] = frozenset()
    since: datetime | None = None
    ids: frozenset[str] = frozenset()  # origins or dead-letter event ids

    def selects(self, letter: Letter) -> bool:
        return (
            (not self.classes or letter.error_class in self.classes)
            and (not self.source_topics or letter.source_topic in self.source_topics)
            and (self.since is None or letter.dead_lettered_at >= self.since)
            and (not self.ids or letter.origin in self.ids or letter.event_id in self.ids)
        )


@dataclass(frozen=True)
class Step:
    """What to do with one selected dead letter: send it, or skip it and why."""

    letter: Letter
    send: bool
    why: str = ""


@dataclass
class Loaded:
    letters: list[Letter] = field(default_factory=list)
    done: dict[str, Done] = field(default_factory=dict)
    unreadable: int = 0


def plan(loaded: Loaded, filters: Filters, processed: Mapping[str, str]) -> list[Step]:
    """Each selected dead letter once (the first record of an origin: re-deliveries collapse), in topic order.

    ``processed`` maps an origin to where a copy of its event was meanwhile accepted (see ``already_processed``)."""
    steps, seen = [], set()
    for letter in loaded.letters:
        if letter.origin in seen or not filters.selects(letter):
            continue
        seen.add(letter.origin)
        done = loaded.done.get(letter.origin)
        if done is not None:
            why = f"already re-driven at {done.at.isoformat()} as {done.redriven_as}: sending it again changes nothing"
            steps.append(Step(letter, False, why))
        elif letter.origin in processed:
            why = f"a copy was processed meanwhile at {processed[letter.origin]} (re-sent upstream): nothing to do"
            steps.append(Step(letter, False, why))
        else:
            steps.append(Step(letter, True))
    return steps


def redriven_event(letter: Letter, to: tuple[str, int, int], at: datetime) -> Event:
    topic, partition, offset = to
    dl_topic, dl_partition, dl_offset = letter.deadletter_coordinates
    return Event(
        "DeadLetterRedriven",
        {
            "event_id": str(uuid.uuid5(REDRIVE_NAMESPACE, f"{letter.origin}>{topic}/{partition}/{offset}")),
            "occurred_at": at,
            "source": REDRIVE_SOURCE,
            "origin": letter.origin,
            "error_class": letter.error_class,
            "deadletter_topic": dl_topic,
            "deadletter_partition": dl_partition,
            "deadletter_offset": dl_offset,
            "redrive_topic": topic,
            "redrive_partition": partition,
            "redrive_offset": offset,
        },
    )


def headers(letter: Letter, at: datetime) -> list[tuple[str, bytes]]:
    return [
        (HEADER_OF, letter.origin.encode()),
        (HEADER_DEADLETTER, letter.at.encode()),
        (HEADER_AT, at.isoformat().encode()),
    ]


async def load(settings: Settings, codec: Codec) -> Loaded:
    """The dead-letter topic, read whole: its dead letters and the re-drives already made."""
    loaded = Loaded()
    async for message in read_topic(settings, settings.topic("deadletter")):
        try:
            event = codec.decode(message.value)
        except SchemaError:
            loaded.unreadable += 1
            continue
        f = event.fields
        if event.type == "DeadLetterRedriven":
            to = f"{f['redrive_topic']}/{f['redrive_partition']}/{f['redrive_offset']}"
            loaded.done.setdefault(f["origin"], Done(f["origin"], event.occurred_at, to))
        elif event.type == "DeadLettered":
            loaded.letters.append(
                Letter(
                    f["origin"],
                    event.event_id,
                    f["error_class"],
                    f["reason"],
                    f["source_topic"],
                    f["source_key"],
                    f["payload"],
                    message.origin,
                    message.timestamp,
                )
            )
    return loaded


_PROCESSED = """
SELECT event_id, type, case_id, concat(kafka_topic, '/', toString(kafka_partition), '/', toString(kafka_offset))
FROM events
WHERE (event_id IN {ids:Array(String)} OR (type = 'AlarmReceived' AND case_id IN {alarms:Array(String)}))
  AND (kafka_topic, kafka_partition, kafka_offset) GLOBAL NOT IN
      (SELECT source_topic, source_partition, source_offset FROM deadletters)
"""


def already_processed(settings: Settings, codec: Codec, letters: Iterable[Letter]) -> dict[str, str]:
    """Origins whose event (same event id, or for an alarm the same alarm id) the pipeline accepted elsewhere and
    did not dead-letter: copies re-sent upstream meanwhile. Raises ProjectionError when ClickHouse cannot answer."""
    wanted: dict[str, tuple[str, str | None]] = {}
    for letter in letters:
        try:
            event = codec.decode(letter.payload)
        except SchemaError:
            continue  # unreadable bytes: nothing downstream can hold a copy
        alarm = event.fields.get("alarm_id") if event.type == "AlarmReceived" else None
        wanted[letter.origin] = (event.event_id, alarm)
    if not wanted:
        return {}
    ids = sorted({w[0] for w in wanted.values()})
    alarms = sorted({w[1] for w in wanted.values() if w[1] is not None})
    rows = query(settings, _PROCESSED, {"ids": ids, "alarms": alarms}).rows
    by_id = {r[0]: r[3] for r in rows}
    by_alarm = {r[2]: r[3] for r in rows if r[1] == "AlarmReceived"}
    out = {}
    for origin, (event_id, alarm) in wanted.items():
        where = by_id.get(event_id) or (by_alarm.get(alarm) if alarm is not None else None)
        if where is not None and where != origin:
            out[origin] = where
    return out


async def execute(settings: Settings, codec: Codec, steps: Iterable[Step]) -> list[tuple[Letter, str]]:
    """Send each step's bytes to its original topic with its key, then record the re-drive; returns what went where."""
    kafka: AIOKafkaProducer = producer(settings)
    await kafka.start()
    sent = []
    try:
        for step in steps:
            if not step.send:
                continue
            letter, now = step.letter, datetime.now(UTC)
            meta: Any = await kafka.send_and_wait(
                letter.source_topic, letter.payload, key=letter.source_key, headers=headers(letter, now)
            )
            to = (meta.topic, meta.partition, meta.offset)
            record = redriven_event(letter, to, datetime.now(UTC))
            await kafka.send_and_wait(settings.topic("deadletter"), codec.encode(record), key=letter.origin.encode())
            sent.append((letter, f"{to[0]}/{to[1]}/{to[2]}"))
    finally:
        await kafka.stop()
    return sent


def processed_or_note(settings: Settings, codec: Codec, letters: list[Letter]) -> tuple[dict[str, str], str]:
    """``already_processed``, or nothing and a note saying why it could not be checked."""
    try:
        return already_processed(settings, codec, letters), ""
    except ProjectionError as exc:
        return {}, f"could not check ClickHouse for copies processed meanwhile ({exc}); downstream still drops them"
