"""``alarmflow simulate``: a street's (or every street's) upstream events, to a JSONL file or straight to Kafka."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from streams.domain.district import LOCAL_TZ, District
from streams.errors import AlarmflowError
from streams.kafka_admin import require_broker
from streams.reference_files import DEFAULT_DIRECTORY, load_district
from streams.settings import Settings
from streams.simulator.config import (
    ALL_STREETS,
    DEFAULT_RATE_PER_DAY,
    HEZHUANG,
    SimConfig,
    SimulationError,
    parse_rate,
)
from streams.simulator.events import Summary
from streams.simulator.jsonl import write_jsonl
from streams.simulator.publisher import publish

BAR_FROM_MESSAGES = 20_000  # smaller runs finish before a bar is worth drawing


@click.command("simulate")
@click.option("--days", type=float, default=SimConfig.days, show_default=True, help="Simulated span in days.")
@click.option("--seed", type=int, default=SimConfig.seed, show_default=True, help="Same seed, same output.")
@click.option(
    "--rate",
    default=None,
    help=f"Alarms per day (6 or 6/d), per hour (250/h), per minute (40/min) or per second (1000/s). "
    f"[default: {DEFAULT_RATE_PER_DAY}/d, Hezhuang's order of magnitude]",
)
@click.option(
    "--speed",
    type=float,
    default=0.0,
    show_default=True,
    help="Kafka mode: simulated seconds per real second (600: ten minutes a second); 0: at once.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the contract's JSON form here (for `alarmflow publish`) instead of publishing.",
)
@click.option("--start", default=None, help="ISO-8601 start (no offset: Asia/Shanghai). [default: now - days]")
@click.option(
    "--duplicates", type=float, default=SimConfig.duplicates, show_default=True, help="Share of events delivered twice."
)
@click.option(
    "--disorder-s",
    type=float,
    default=SimConfig.disorder_s,
    show_default=True,
    help="Lateness bound of the out-of-order events, in seconds (0: in order).",
)
@click.option(
    "--malformed", type=float, default=SimConfig.malformed, show_default=True, help="Broken messages added, per event."
)
@click.option(
    "--street",
    default=HEZHUANG,
    show_default=True,
    help=f"Street code (streets.json), or '{ALL_STREETS}': every street, the rate shared by grid weight.",
)
@click.option(
    "--district-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="District reference files, e.g. deploy/city. [default: ALARMFLOW_DISTRICT_DIR, else deploy/district]",
)
@click.option(
    "--hotspot-calls",
    type=float,
    default=SimConfig.hotspot_calls,
    show_default=True,
    help="Expected renovation-noise calls at the hotspot compound over the run (0: none).",
)
@click.option(
    "--drain-h",
    type=float,
    default=0.0,
    show_default=True,
    help="Hours after the span in which the last cases' field events still come.",
)
@click.pass_context
def simulate(
    ctx: click.Context,
    days: float,
    seed: int,
    rate: str | None,
    speed: float,
    out: Path | None,
    start: str | None,
    duplicates: float,
    disorder_s: float,
    malformed: float,
    street: str,
    district_dir: Path | None,
    hotspot_calls: float,
    drain_h: float,
) -> None:
    """Simulate a street's 110 alarms and field responses: seeded, deterministic, with imperfect input."""
    settings = ctx.obj if isinstance(ctx.obj, Settings) else Settings.from_env()
    if out is None:
        asyncio.run(require_broker(settings.kafka_bootstrap))  # one clear line, not a traceback later
    try:
        config = SimConfig(
            seed=seed,
            start=_start(start),
            days=days,
            drain_hours=drain_h,
            rate_per_day=parse_rate(rate) if rate else DEFAULT_RATE_PER_DAY,
            street_code=street,
            hotspot_calls=hotspot_calls,
            duplicates=duplicates,
            disorder_s=disorder_s,
            malformed=malformed,
        ).resolved(datetime.now(UTC))
        district = load_district(district_dir or settings.district_dir or DEFAULT_DIRECTORY)
        summary = _run(settings, config, district, speed, out)
    except AlarmflowError as exc:
        raise click.ClickException(str(exc)) from exc
    for line in summary.lines():
        click.echo(line)
    click.echo(f"wrote {out}" if out else f"published to {settings.topic('alarms')}, {settings.topic('case-events')}")


def _start(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise SimulationError(f"--start {text!r} is not ISO-8601, e.g. 2026-05-01T08:00+08:00") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=LOCAL_TZ)


def _run(settings: Settings, config: SimConfig, district: District, speed: float, out: Path | None) -> Summary:
    end = config.start_ms() / 1000 + config.days * 86_400 + config.drain_hours * 3600
    if out is None and end > datetime.now(UTC).timestamp():
        ahead = timedelta(seconds=round(end - datetime.now(UTC).timestamp()))
        click.echo(f"the run ends {ahead} from now: each event waits until it has happened", err=True)
    expected = config.rate_per_day * config.days * 5
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[messages]:>10} messages"),
        TimeElapsedColumn(),
        transient=True,
        disable=expected < BAR_FROM_MESSAGES and (out is not None or speed == 0),
    ) as bar:
        task = bar.add_task("simulating" if out else "publishing", total=1.0, messages=0)

        def report(done: float, messages: int) -> None:
            bar.update(task, completed=done, messages=messages)

        if out is not None:
            return write_jsonl(out, config, district, report)
        return asyncio.run(publish(settings, config, district, speed, report))
