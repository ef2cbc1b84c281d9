"""Batch recounts of the streamed aggregates, by SQL from the raw projections: what ``alarmflow verify`` runs.

Each query returns one row per difference between the stream's figure and the batch one, so a clean
run returns no rows. Neither side uses FINAL: the projector inserts every event once. A side missing
from a FULL JOIN reads as 0 through ifNull, whatever the session's join_use_nulls says.
"""

from __future__ import annotations

# Every dispatched case with a conclusion counts once, with its latest conclusion, on that
# conclusion's local day; the stream's current version per key must say the same, its nearest-rank
# P50 and P90 of the times from dispatch to conclusion included.
OUTCOME_DIFFERENCES = """
WITH
    batch AS (
        SELECT street_code, ifNull(grid_code, '') AS grid, category, team,
               toDate(toTimeZone(outcome_at, 'Asia/Shanghai')) AS local_day,
               toUInt64(count()) AS concluded,
               toUInt64(countIf(outcome IN {success:Array(String)})) AS success,
               toUInt64(countIf(outcome = 'NO_ACTION_NEEDED')) AS no_action,
               toDecimal128(sum(ifNull(compensation, toDecimal64(0, 2))), 2) AS compensation,
               groupArray(toInt64(greatest(dateDiff('millisecond', dispatched_at, outcome_at), 0))) AS durations,
               toInt64(arraySum(durations)) AS duration_sum_ms,
               ifNull(alarmflow_nearest_rank(durations, 500), -1) AS p50_ms,
               ifNull(alarmflow_nearest_rank(durations, 900), -1) AS p90_ms
        FROM cases
        WHERE outcome IS NOT NULL
        GROUP BY street_code, grid, category, team, local_day
    ),
    streamed AS (
        SELECT street_code, ifNull(grid_code, '') AS grid, category, team, local_day,
               toUInt64(concluded) AS concluded, toUInt64(success) AS success,
               toUInt64(no_action_needed) AS no_action, toDecimal128(compensation, 2) AS compensation,
               toInt64(duration_sum_ms) AS duration_sum_ms, ifNull(p50_ms, -1) AS p50_ms, ifNull(p90_ms, -1) AS p90_ms
        FROM v_outcome_daily
        WHERE concluded > 0
    )
SELECT street_code, grid, category, team, local_day,
       b.concluded AS batch_concluded, s.concluded AS stream_concluded,
       b.success AS batch_success, s.success AS stream_success,
       b.no_action AS batch_no_action, s.no_action AS stream_no_action,
       b.compensation AS batch_compensation, s.compensation AS stream_compensation,
       b.duration_sum_ms AS batch_duration_ms, s.duration_sum_ms AS stream_duration_ms,
       b.p90_ms AS batch_p90_ms, s.p90_ms AS stream_p90_ms
FROM batch AS b
FULL OUTER JOIN streamed AS s USING (street_code, grid, category, team, local_day)
WHERE ifNull(b.concluded, 0) != ifNull(s.concluded, 0) OR ifNull(b.success, 0) != ifNull(s.success, 0)
   OR ifNull(b.no_action, 0) != ifNull(s.no_action, 0) OR ifNull(b.compensation, 0) != ifNull(s.compensation, 0)
   OR ifNull(b.duration_sum_ms, 0) != ifNull(s.duration_sum_ms, 0)
   OR ifNull(b.p50_ms, -1) != ifNull(s.p50_ms, -1) OR ifNull(b.p90_ms, -1) != ifNull(s.p90_ms, -1)
ORDER BY local_day, street_code, grid, category, team
"""

# For every counted alarm (non-police, in a street, with a place), the number of alarms of its
# family at its place within (t - window, t], ties broken by case id as the stream does. Every alarm
# whose count reaches the threshold must have a Detected or Updated event with that count, and no
# other alarm may have one.
HOTSPOT_DIFFERENCES = """
WITH
    a AS (
        SELECT case_id, occurred_at AS at, splitByChar('.', category)[1] AS family,
               concat(assumeNotNull(place_key), '|', family) AS hotspot_id,
               transform(family, {families:Array(String)}, {windows_ms:Array(Int64)}, {default_window_ms:Int64})
                   AS window_ms,
               transform(family, {families:Array(String)}, {thresholds:Array(UInt32)}, {default_threshold:UInt32})
                   AS threshold
        FROM triage
        WHERE disposition = 'NON_POLICE' AND street_code IS NOT NULL AND place_key IS NOT NULL
    ),
    expected AS (
        SELECT x.hotspot_id AS hotspot_id, x.at AS at, x.case_id AS case_id,
               toUInt64(countIf(y.at > x.at - toIntervalMillisecond(x.window_ms)
                                AND (y.at < x.at OR (y.at = x.at AND y.case_id <= x.case_id)))) AS n,
               any(x.threshold) AS threshold
        FROM a AS x INNER JOIN a AS y ON x.hotspot_id = y.hotspot_id
        GROUP BY hotspot_id, at, case_id
        HAVING n >= threshold
    ),
    streamed AS (
        SELECT hotspot_id, occurred_at AS at, sample_case_ids[-1] AS case_id, toUInt64(count) AS n
        FROM hotspots
        WHERE type IN ('HotspotDetected', 'HotspotUpdated')
    )
SELECT hotspot_id, at, case_id, e.n AS batch_count, s.n AS stream_count
FROM expected AS e
FULL OUTER JOIN streamed AS s USING (hotspot_id, at, case_id)
WHERE ifNull(e.n, 0) != ifNull(s.n, 0)
ORDER BY at, hotspot_id, case_id
"""

TOTALS = """
SELECT (SELECT count() FROM v_outcome_daily) AS outcome_keys,
       (SELECT sum(concluded) FROM v_outcome_daily) AS concluded_cases,
       (SELECT count() FROM hotspots WHERE type IN ('HotspotDetected', 'HotspotUpdated')) AS hotspot_reports,
       (SELECT countIf(type = 'HotspotDetected') FROM hotspots) AS episodes
"""
