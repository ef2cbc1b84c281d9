"""The ``alarmflow`` command: worker, publish, simulate, tail, query, lag, kafka, deadletter, report, verify."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import click
from aiokafka.errors import KafkaConnectionError

from projections.errors import ProjectionError, QueryRejected
from schemas.codec import Codec
from schemas.errors import SchemaError
from schemas.validation import Limits
from streams import kafka_local
from streams.errors import AlarmflowError, BrokerUnavailable
from streams.kafka_admin import groups_lag, require_broker, reset_offsets, wait_caught_up
from streams.kafka_io import parse_lines, publish_events, read_jsonl, read_topic
from streams.query_client import query as run_query
from streams.query_client import render
from streams.settings import Settings
from streams.simulator.cli import simulate

EXIT_ENVIRONMENT = 2  # no broker, a missing key, an unreadable file, a database held elsewhere


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


def _broker(ctx: click.Context) -> Settings:
    """The settings, once a broker answers at their address (else one line and exit 2)."""
    settings = _settings(ctx)
    asyncio.run(require_broker(settings.kafka_bootstrap))
    return settings


class _Group(click.Group):
    """Problems with the environment end in one line and exit 2, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KafkaConnectionError:
            settings = ctx.obj if isinstance(ctx.obj, Settings) else None
            _fail(BrokerUnavailable(settings.kafka_bootstrap if settings else "the configured address"))
        except (AlarmflowError, SchemaError, ProjectionError) as exc:
            _fail(exc)
        except OSError as exc:  # a file that cannot be read or written
            _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))


def _fail(problem: object) -> NoReturn:
    click.echo(f"Error: {problem}", err=True)
    sys.exit(EXIT_ENVIRONMENT)


@click.group(cls=_Group)
@click.pass_context
def main(ctx: click.Context) -> None:
    """alarmflow: police–grid coordination events, from Kafka to ClickHouse."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The client logs every failed connection attempt; a command reports the outcome once, itself.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    ctx.obj = Settings.from_env()


@main.command()
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run the stream worker (Faust) until Ctrl-C or SIGTERM."""
    from streams.app import run_worker

    settings = _broker(ctx)
    settings.phone_key()  # the worker needs it: say so now, not from inside Faust
    sys.argv = [sys.argv[0]]  # Faust's Worker parses argv itself
    run_worker(settings)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def publish(ctx: click.Context, file: Path) -> None:
    """Encode a JSONL file of events and publish each to its topic with its key."""
    from rich.progress import Progress

    settings, codec = _broker(ctx), Codec()
    limits = Limits(max_bytes=settings.max_message_bytes)
    total = sum(1 for line in read_jsonl(file) if line.strip())
    with Progress(transient=True, disable=total < 1000) as progress:
        bar = progress.add_task(f"publishing {file.name}", total=total)
        sent, errors = asyncio.run(
            publish_events(
                settings, codec, parse_lines(codec, read_jsonl(file), limits), lambda n: progress.advance(bar, n)
            )
        )
    for error in errors:
        click.echo(f"{file}:{error}", err=True)
    click.echo(f"published {sent} events from {file}" + (f", {len(errors)} lines rejected" if errors else ""))
    if errors:
        sys.exit(1)


@main.command()
@click.argument("topic")
@click.option("--follow", "-f", is_flag=True, help="Keep waiting for new messages.")
@click.option("--max", "limit", type=int, default=0, help="Stop after N messages.")
@click.pass_context
def tail(ctx: click.Context, topic: str, follow: bool, limit: int) -> None:
    """Decode and print a topic (a full name, or a suffix such as 'alarms')."""
    settings, codec = _broker(ctx), Codec()
    name = topic if "." in topic else settings.topic(topic)

    async def run() -> None:
        count = 0
        async for message in read_topic(settings, name, follow=follow):
            try:
                line: dict[str, Any] = codec.to_json(codec.decode(message.value))
            except Exception as exc:  # noqa: BLE001 - tail shows bad input, it does not judge it
                line = {"error": f"{type(exc).__name__}: {exc}", "bytes": len(message.value)}
            click.echo(json.dumps({"at": message.origin, **line}, ensure_ascii=False))
            count += 1
            if limit and count >= limit:
                return

    asyncio.run(run())


@main.command()
@click.argument("sql")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
@click.option("--param", "params", multiple=True, help="name=value for {name:Type} placeholders.")
@click.pass_context
def query(ctx: click.Context, sql: str, fmt: str, params: tuple[str, ...]) -> None:
    """Read-only SQL on the configured ClickHouse (through the worker when it holds chDB)."""
    parameters = dict(p.split("=", 1) for p in params)
    try:
        result = run_query(_settings(ctx), sql, parameters)
    except QueryRejected as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(render(result, fmt), nl=False)


@main.command()
@click.option("--wait-zero", is_flag=True, help="Block until nothing but clock records is pending.")
@click.option("--timeout", type=float, default=300.0, show_default=True)
@click.pass_context
def lag(ctx: click.Context, wait_zero: bool, timeout: float) -> None:
    """Consumer lag of the worker's group, per topic and partition."""
    settings = _broker(ctx)
    groups = settings.consumer_groups()
    try:
        if wait_zero:
            lags = asyncio.run(wait_caught_up(settings.kafka_bootstrap, groups, timeout))
        else:
            lags = asyncio.run(groups_lag(settings.kafka_bootstrap, groups))
    except AlarmflowError as exc:
        raise click.ClickException(str(exc)) from exc
    for x in lags:
        click.echo(
            f"{x.group}\t{x.topic}\t{x.partition}\tcommitted={x.committed}\tend={x.end}\tlag={x.lag}"
            f"\tpending={x.pending}"
        )
    click.echo(
        f"total lag {sum(x.lag for x in lags)}, of which {sum(x.pending for x in lags)} pending "
        "(the rest are clock records: ticks and progress announcements)"
    )


@main.command("reset-offsets")
@click.option("--agents", is_flag=True, help="Also rewind the stream agents (their tables keep their state).")
@click.confirmation_option(prompt="Rewind to offset 0 of every topic?")
@click.pass_context
def reset_offsets_cmd(ctx: click.Context, agents: bool) -> None:
    """Rewind the projector to offset 0, for a replay into ClickHouse (stop workers first)."""
    settings = _broker(ctx)
    for group, topics in settings.consumer_groups().items():
        if group != settings.app_id or agents:
            try:
                n = asyncio.run(reset_offsets(settings.kafka_bootstrap, group, topics))
            except AlarmflowError as exc:
                raise click.ClickException(str(exc)) from exc
            click.echo(f"{group} rewound to offset 0 on {n} partitions")


@main.group()
def kafka() -> None:
    """The local single-node Kafka broker (KRaft, 127.0.0.1)."""


@kafka.command("up")
@click.pass_context
def kafka_up(ctx: click.Context) -> None:
    """Resolve the jars with Maven, format, start, wait until ready, create topics."""
    settings = _settings(ctx)
    try:
        created = kafka_local.up(settings)
    except AlarmflowError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"kafka up on {settings.kafka_bootstrap}" + (f"; created {', '.join(created)}" if created else ""))


@kafka.command("down")
@click.option("--purge", is_flag=True, help="Also delete the broker's data.")
@click.pass_context
def kafka_down(ctx: click.Context, purge: bool) -> None:
    """Stop the broker cleanly."""
    was_running = kafka_local.down(_settings(ctx), purge=purge)
    click.echo(("kafka stopped" if was_running else "kafka was not running") + (" and purged" if purge else ""))


@kafka.command("status")
@click.pass_context
def kafka_status(ctx: click.Context) -> None:
    """Is the broker running, and which topics does it have."""
    info = kafka_local.status(_settings(ctx))
    click.echo(json.dumps(info, indent=1))
    if not info["running"]:
        sys.exit(1)


@main.command()
@click.option("--days", type=float, default=7.0, show_default=True, help="Simulated days of Hezhuang.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--rate", help="Alarms per day (or 250/h, 40/min, 1000/s); default: the simulator's Hezhuang rate.")
@click.option("--play-seconds", type=float, default=45.0, show_default=True, help="Play the span in about this long.")
@click.option(
    "--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), help="Default: var/demo/report.html."
)
@click.option("--stay", is_flag=True, help="Keep the worker, broker and live board up until Ctrl-C.")
@click.pass_context
def demo(
    ctx: click.Context,
    days: float,
    seed: int,
    rate: str | None,
    play_seconds: float,
    html_file: Path | None,
    stay: bool,
) -> None:
    """Start everything, simulate a week of Hezhuang, print the report, write the HTML, stop everything."""
    from streams.demo import DemoRun, run_demo
    from streams.simulator.config import parse_rate

    try:
        run = DemoRun(days, seed, parse_rate(rate) if rate else None, play_seconds)
        run_demo(_settings(ctx), run, html_file, stay)
    except KeyboardInterrupt:
        raise click.Abort() from None
    except AlarmflowError as exc:
        raise click.ClickException(str(exc)) from exc


@main.group()
def deadletter() -> None:
    """The dead-letter topic."""


@deadletter.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def deadletter_list(ctx: click.Context, as_json: bool) -> None:
    """Every dead-lettered message once (re-deliveries collapse by origin), readably."""
    from streams.deadletters import list_deadletters

    settings = _broker(ctx)
    records = asyncio.run(list_deadletters(settings, Codec()))
    if as_json:
        click.echo(json.dumps(records, ensure_ascii=False, indent=1))
        return
    for r in records:
        again = f"\tre-driven as {r['redriven_as']}" if r["redriven_as"] else ""
        click.echo(f"{r['origin']}\t{r['error_class']}\t{r['payload_bytes']} bytes\t{r['reason']}{again}")
    click.echo(f"{len(records)} dead-lettered messages")


@deadletter.command("redrive")
@click.option("--class", "classes", multiple=True, help="Only this error class (repeatable), e.g. UnknownCategory.")
@click.option("--source-topic", "source_topics", multiple=True, help="Only from this topic (a suffix or a full name).")
@click.option("--since", help="Only dead-lettered at or after this time (ISO-8601; without a zone: Asia/Shanghai).")
@click.option("--id", "ids", multiple=True, help="Only this dead letter: its origin (topic/partition/offset) or id.")
@click.option("--dry-run", is_flag=True, help="Print what would be sent; send nothing.")
@click.pass_context
def deadletter_redrive(
    ctx: click.Context,
    classes: tuple[str, ...],
    source_topics: tuple[str, ...],
    since: str | None,
    ids: tuple[str, ...],
    dry_run: bool,
) -> None:
    """Send dead letters' original bytes to their original topic again, each once (see the README)."""
    from streams import redrive

    settings, codec = _broker(ctx), Codec()
    filters = redrive.Filters(
        frozenset(classes),
        frozenset(t if "." in t else settings.topic(t) for t in source_topics),
        _since(since) if since else None,
        frozenset(ids),
    )
    loaded = asyncio.run(redrive.load(settings, codec))
    selected = [s.letter for s in redrive.plan(loaded, filters, {}) if s.send]
    processed, note = redrive.processed_or_note(settings, codec, selected)
    if note:
        click.echo(f"note: {note}", err=True)
    steps = redrive.plan(loaded, filters, processed)
    for step in steps:
        what = f"{step.letter.origin} ({step.letter.error_class})"
        if step.send:
            click.echo(f"{'would re-drive' if dry_run else 're-driving'} {what} to {step.letter.source_topic}")
        else:
            click.echo(f"skip {what}: {step.why}")
    to_send = sum(1 for s in steps if s.send)
    if dry_run:
        click.echo(f"dry run: {to_send} to re-drive, {len(steps) - to_send} to skip; nothing sent")
        return
    for letter, where in asyncio.run(redrive.execute(settings, codec, steps)):
        click.echo(f"re-drove {letter.origin} as {where}")
    click.echo(
        f"{to_send} re-driven, {len(steps) - to_send} skipped (nothing changes downstream for those); "
        "outcomes: alarmflow query 'SELECT * FROM v_deadletter_redrives'"
    )


def _since(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO-8601 date or time", param_hint="--since") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=ZoneInfo("Asia/Shanghai"))


def _local_today() -> date:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


@main.group()
def hotspots() -> None:
    """Recurring trouble spots."""


@hotspots.command("agenda")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="Local day (default: today in Asia/Shanghai).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
@click.pass_context
def hotspots_agenda(ctx: click.Context, day: datetime | None, fmt: str) -> None:
    """The day's agenda for the joint meeting (联合会商): new, active and just-cooled hotspots."""
    from streams.report import agenda

    when = day.date() if day else _local_today()
    try:
        result = agenda(_settings(ctx), when)
    except QueryRejected as exc:
        raise click.ClickException(str(exc)) from exc
    if fmt == "table":
        click.echo(f"Hotspot agenda for {when.isoformat()}: {len(result.rows)} item(s)")
    click.echo(render(result, fmt), nl=False)


@main.command()
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), help="Also write this page.")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="The agenda's day (default: today).")
@click.pass_context
def report(ctx: click.Context, html_file: Path | None, day: datetime | None) -> None:
    """The operational summary: routing, SLA, outcomes, hotspots, dead letters."""
    from streams.report import agenda, sections

    settings, when = _settings(ctx), (day.date() if day else _local_today())
    try:
        for title, result in sections(settings):
            click.echo(f"\n-- {title}")
            click.echo(render(result, "table"), nl=False)
        click.echo(f"\n-- Hotspot agenda for {when.isoformat()} (联合会商)")
        click.echo(render(agenda(settings, when), "table"), nl=False)
        if html_file is not None:
            from streams.report_html import write_html

            write_html(settings, html_file, when)
            click.echo(f"\nwrote {html_file}")
    except QueryRejected as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@click.pass_context
def verify(ctx: click.Context) -> None:
    """Recount outcome_daily and the hotspot counts by SQL from the raw projections; exit 1 on any difference."""
    from streams.reference_files import DEFAULT_DIRECTORY, load_hotspot_policy
    from streams.verify import verify as run_verify

    settings = _settings(ctx)
    try:
        checked = run_verify(settings, load_hotspot_policy(settings.district_dir or DEFAULT_DIRECTORY))
    except QueryRejected as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("checked: " + ", ".join(f"{k}={v}" for k, v in checked.totals.items()))
    for name, result in (("outcome_daily", checked.outcome_differences), ("hotspots", checked.hotspot_differences)):
        click.echo(f"{name}: {len(result.rows)} difference(s)")
        if result.rows:
            click.echo(render(result, "table"), nl=False)
    click.echo(f"{checked.differences} difference(s) in total")
    if checked.differences:
        sys.exit(1)


main.add_command(simulate)

if __name__ == "__main__":
    main()
