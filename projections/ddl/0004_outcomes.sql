-- Outcomes, hotspots and repeat calls.
--
-- success rate = success / (concluded - NO_ACTION_NEEDED), where success counts the configured
-- success outcomes (ALARMFLOW_SUCCESS_OUTCOMES, default RESOLVED) and every concluded case counts
-- once, with its latest conclusion, on the local day (Asia/Shanghai) of that conclusion.

ALTER TABLE triage ADD COLUMN IF NOT EXISTS place_key Nullable(String) AFTER caller_token;

-- Every version of each daily aggregate as the stream published it; the newest version is current.
CREATE TABLE IF NOT EXISTS outcome_daily
(
    event_id            String,
    stats_key           String,
    occurred_at         DateTime64(3, 'UTC'),
    street_code         LowCardinality(String),
    grid_code           Nullable(String),
    category            LowCardinality(String),
    team                LowCardinality(String),
    local_day           Date,
    version             UInt64,
    concluded           UInt32,
    success             UInt32,
    resolved            UInt32,
    referred            UInt32,
    escalated_to_police UInt32,
    unresolved          UInt32,
    no_action_needed    UInt32,
    success_outcomes    Array(String),
    compensation        Decimal(18, 2),
    durations_ms        Array(Int64),
    duration_sum_ms     Int64,
    p90_ms              Nullable(Int64),
    ingested_at         DateTime64(3, 'UTC'),
    kafka_topic         LowCardinality(String),
    kafka_partition     UInt32,
    kafka_offset        UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY stats_key
SETTINGS non_replicated_deduplication_window = 10000;

-- OutcomeStatsUpdated v2 carries P50 and no longer the durations (durations_ms stays empty on its rows; the
-- distribution is in the cases view).
ALTER TABLE outcome_daily ADD COLUMN IF NOT EXISTS p50_ms Nullable(Int64) AFTER duration_sum_ms;

-- Every hotspot change: detected, updated (the count grew), cooled.
CREATE TABLE IF NOT EXISTS hotspots
(
    event_id           String,
    type               LowCardinality(String),
    occurred_at        DateTime64(3, 'UTC'),
    hotspot_id         String,
    episode_id         String,
    place_key          String,
    place              Nullable(String),
    family             LowCardinality(String),
    street_code        LowCardinality(String),
    grid_code          Nullable(String),
    team               Nullable(String),
    window_days        UInt16,
    threshold          UInt32,
    count              UInt32,
    episode_started_at DateTime64(3, 'UTC'),
    sample_case_ids    Array(String),
    ingested_at        DateTime64(3, 'UTC'),
    kafka_topic        LowCardinality(String),
    kafka_partition    UInt32,
    kafka_offset       UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (occurred_at, event_id)
SETTINGS non_replicated_deduplication_window = 10000;

-- The current version of each (street, grid, category, force, local day), with its success rate.
CREATE OR REPLACE VIEW v_outcome_daily AS
SELECT stats_key, local_day, street_code, grid_code, category, team, version, concluded, success,
       resolved, referred, escalated_to_police, unresolved, no_action_needed, success_outcomes, compensation,
       duration_sum_ms, p50_ms, p90_ms,
       if(concluded - no_action_needed = 0, NULL, round(success / (concluded - no_action_needed), 4)) AS success_rate
FROM (SELECT * FROM outcome_daily ORDER BY version DESC LIMIT 1 BY stats_key);

-- success_rate = success / (concluded - NO_ACTION_NEEDED), by street, month and category.
CREATE OR REPLACE VIEW v_success_rate AS
SELECT street_code, toStartOfMonth(local_day) AS month, category, sum(concluded) AS concluded,
       sum(success) AS success, sum(no_action_needed) AS no_action_needed,
       if(concluded - no_action_needed = 0, NULL, round(success / (concluded - no_action_needed), 4)) AS success_rate
FROM v_outcome_daily
GROUP BY street_code, month, category
ORDER BY street_code, month, category;

CREATE OR REPLACE VIEW v_outcome_mix AS
SELECT street_code, outcome, sum(n) AS cases, round(cases / sum(cases) OVER (PARTITION BY street_code), 4) AS share
FROM
(
    SELECT street_code,
           arrayJoin([('RESOLVED', resolved), ('REFERRED', referred), ('ESCALATED_TO_POLICE', escalated_to_police),
                      ('UNRESOLVED', unresolved), ('NO_ACTION_NEEDED', no_action_needed)]) AS o,
           o.1 AS outcome, o.2 AS n
    FROM v_outcome_daily
)
GROUP BY street_code, outcome
ORDER BY street_code, cases DESC;

CREATE OR REPLACE VIEW v_compensation AS
SELECT street_code, toStartOfMonth(local_day) AS month, category, sum(concluded) AS concluded,
       sum(compensation) AS compensation_yuan
FROM v_outcome_daily
GROUP BY street_code, month, category
HAVING compensation_yuan > 0
ORDER BY street_code, month, compensation_yuan DESC;

-- One row per hotspot episode: when it started, its peak, and whether it has cooled. The latest report
-- is the one with the greatest (occurred_at, count, event_id): unique, so equal times cannot make it vary;
-- values are taken through tuples so a NULL (a geohash cell has no place name) is taken, not skipped.
CREATE OR REPLACE VIEW v_hotspot_history AS
SELECT episode_id, hotspot_id, place_key, tupleElement(latest, 1) AS place, family, street_code,
       tupleElement(latest, 2) AS grid_code, tupleElement(latest, 3) AS team, started_at, reports, peak,
       tupleElement(last_report, 1) AS last_count, threshold, window_days, cooled_at,
       if(cooled_at IS NULL, 'active', 'cooled') AS status, tupleElement(last_report, 2) AS sample_case_ids
FROM
(
    SELECT episode_id, any(hotspot_id) AS hotspot_id, any(place_key) AS place_key, any(family) AS family,
           any(street_code) AS street_code,
           argMax(tuple(place, grid_code, team), (occurred_at, count, event_id)) AS latest,
           min(episode_started_at) AS started_at, countIf(type != 'HotspotCooled') AS reports, max(count) AS peak,
           argMaxIf(tuple(count, sample_case_ids), (occurred_at, count, event_id), type != 'HotspotCooled')
               AS last_report,
           any(threshold) AS threshold, any(window_days) AS window_days,
           maxOrNullIf(occurred_at, type = 'HotspotCooled') AS cooled_at
    FROM hotspots
    GROUP BY episode_id
)
ORDER BY started_at, episode_id;

-- A call is a repeat when the same caller (by token) or the same place and category called within
-- the 7 days before it; repeat_of names the most recent such earlier case (on equal times, the
-- greatest case id: earlier calls are first reduced to one per key and time, so the ASOF join has
-- one candidate to find). A call with no earlier one is not in this view; `cases` then shows
-- repeat_of NULL and repeat_reasons [].
CREATE OR REPLACE VIEW v_repeat_calls AS
WITH
    t AS (SELECT case_id, occurred_at, category, caller_token, place_key FROM triage),
    callers AS (
        SELECT assumeNotNull(caller_token) AS k, occurred_at AS at, max(case_id) AS case_id
        FROM t WHERE caller_token IS NOT NULL GROUP BY k, at
    ),
    places AS (
        SELECT concat(assumeNotNull(place_key), '|', category) AS k, occurred_at AS at, max(case_id) AS case_id
        FROM t WHERE place_key IS NOT NULL GROUP BY k, at
    ),
    by_caller AS (
        SELECT a.case_id AS case_id, b.case_id AS prev_case, b.at AS prev_at
        FROM (SELECT case_id, assumeNotNull(caller_token) AS k, occurred_at AS at FROM t WHERE caller_token IS NOT NULL)
            AS a
        ASOF INNER JOIN callers AS b ON a.k = b.k AND a.at > b.at
        WHERE b.at >= a.at - INTERVAL 7 DAY
    ),
    by_place AS (
        SELECT a.case_id AS case_id, b.case_id AS prev_case, b.at AS prev_at
        FROM (
            SELECT case_id, concat(assumeNotNull(place_key), '|', category) AS k, occurred_at AS at
            FROM t WHERE place_key IS NOT NULL
        ) AS a
        ASOF INNER JOIN places AS b ON a.k = b.k AND a.at > b.at
        WHERE b.at >= a.at - INTERVAL 7 DAY
    )
SELECT case_id, toNullable(argMax(prev_case, (prev_at, prev_case))) AS repeat_of,
       toNullable(max(prev_at)) AS repeat_of_at, arraySort(groupUniqArray(reason)) AS repeat_reasons
FROM
(
    SELECT case_id, prev_case, prev_at, 'caller' AS reason FROM by_caller
    UNION ALL
    SELECT case_id, prev_case, prev_at, 'place' AS reason FROM by_place
)
GROUP BY case_id;
