"""The operational summary: routing, SLA, outcomes, hotspots and dead letters, read from ClickHouse."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from projections.query import QueryResult
from streams.query_client import query
from streams.settings import Settings

# The agenda of the day's joint meeting (联合会商): episodes open at the end of the day, and those that
# cooled during it; the trend compares the place's alarms of the family in the last 7 days with the 7 before.
AGENDA = """
WITH
    toDateTime64(addDays(toDate({day:String}), 1), 3, 'Asia/Shanghai') AS day_end,
    ep AS (
        SELECT episode_id, pk, tupleElement(latest, 1) AS place, family, street_code,
               tupleElement(latest, 2) AS grid_code, tupleElement(latest, 3) AS team, started_at,
               tupleElement(last_report, 1) AS count, threshold, window_days, cooled_at,
               cooled_at IS NOT NULL AS cooled, tupleElement(last_report, 2) AS samples
        FROM
        (
            SELECT episode_id, any(place_key) AS pk, any(family) AS family, any(street_code) AS street_code,
                   argMax(tuple(place, grid_code, team), (occurred_at, count, event_id)) AS latest,
                   min(episode_started_at) AS started_at,
                   argMaxIf(tuple(count, sample_case_ids), (occurred_at, count, event_id), type != 'HotspotCooled')
                       AS last_report,
                   any(threshold) AS threshold, any(window_days) AS window_days,
                   maxOrNullIf(occurred_at, type = 'HotspotCooled') AS cooled_at
            FROM hotspots
            WHERE occurred_at < day_end
            GROUP BY episode_id
        )
    ),
    recent AS (
        SELECT assumeNotNull(place_key) AS pk, splitByChar('.', category)[1] AS family,
               countIf(occurred_at >= day_end - INTERVAL 7 DAY) AS last_7d,
               countIf(occurred_at < day_end - INTERVAL 7 DAY) AS prior_7d
        FROM triage
        WHERE place_key IS NOT NULL AND disposition = 'NON_POLICE'
          AND occurred_at >= day_end - INTERVAL 14 DAY AND occurred_at < day_end
        GROUP BY pk, family
    )
SELECT multiIf(cooled, 'COOLED', toDate(toTimeZone(started_at, 'Asia/Shanghai')) = toDate({day:String}), 'NEW',
               'ACTIVE') AS status,
       ifNull(place, ep.pk) AS place, ep.family AS family, street_code, ifNull(grid_code, '') AS grid,
       ifNull(team, '') AS owning_force, count, threshold, window_days,
       toDate(toTimeZone(started_at, 'Asia/Shanghai')) AS since, ifNull(r.last_7d, 0) AS last_7d,
       ifNull(r.prior_7d, 0) AS prior_7d,
       multiIf(last_7d > prior_7d, 'rising', last_7d < prior_7d, 'falling', 'steady') AS trend,
       arrayStringConcat(samples, ' ') AS sample_cases
FROM ep
LEFT JOIN recent AS r ON r.pk = ep.pk AND r.family = ep.family
WHERE NOT cooled OR toDate(toTimeZone(assumeNotNull(cooled_at), 'Asia/Shanghai')) = toDate({day:String})
ORDER BY indexOf(['NEW', 'ACTIVE', 'COOLED'], status), count DESC, place, ep.episode_id
"""

OVERALL_SUCCESS = """
SELECT sum(concluded) AS concluded, sum(success) AS success, sum(no_action_needed) AS no_action_needed,
       if(concluded - no_action_needed = 0, NULL, round(success / (concluded - no_action_needed), 4)) AS success_rate,
       sum(compensation) AS compensation_yuan
FROM v_outcome_daily
"""


@dataclass(frozen=True)
class Section:
    title: str
    sql: str


SECTIONS = (
    Section("Alarms by disposition and rule", "SELECT disposition, rule, alarms FROM v_triage_summary"),
    Section(
        "Dispatches by street and force",
        "SELECT street_code, team, sum(cases) AS cases, uniqExact(grid_code) AS grids FROM v_routing "
        "GROUP BY street_code, team ORDER BY street_code, cases DESC",
    ),
    Section(
        "SLA per stage (within target = met / (met + breached); quantiles of seconds from dispatch)",
        "SELECT stage, met, breached, cancelled, open, within_target, p50_s, p90_s, p95_s FROM v_sla_by_stage",
    ),
    Section(
        "Success rate = success / (concluded − NO_ACTION_NEEDED); success = " + "{success}",
        OVERALL_SUCCESS,
    ),
    Section("Outcome mix", "SELECT street_code, outcome, cases, share FROM v_outcome_mix"),
    Section(
        "Success rate by street, month and category",
        "SELECT street_code, month, category, concluded, success, success_rate FROM v_success_rate",
    ),
    Section("Compensation agreed (yuan)", "SELECT street_code, month, category, compensation_yuan FROM v_compensation"),
    Section("Time from dispatch to conclusion", "SELECT * FROM v_conclusion_time"),
    Section(
        "Repeat calls (same caller, or same place and category, within 7 days)",
        "SELECT count() AS dispatched, countIf(repeat_of IS NOT NULL) AS repeats, "
        "countIf(has(repeat_reasons, 'caller')) AS same_caller, countIf(has(repeat_reasons, 'place')) AS same_place "
        "FROM cases",
    ),
    Section(
        "Hotspot history",
        "SELECT status, ifNull(place, place_key) AS place, family, street_code, team, "
        "toDate(toTimeZone(started_at, 'Asia/Shanghai')) AS since, peak, reports, cooled_at FROM v_hotspot_history",
    ),
    Section("Dead letters", "SELECT source_topic, error_class, messages FROM v_deadletter_counts"),
)


def agenda(settings: Settings, day: date) -> QueryResult:
    return query(settings, AGENDA, {"day": day.isoformat()})


def sections(settings: Settings) -> list[tuple[str, QueryResult]]:
    success = ", ".join(sorted(settings.success))
    return [(s.title.replace("{success}", success), query(settings, s.sql)) for s in SECTIONS]
