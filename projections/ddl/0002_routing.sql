-- One row per triage decision (every alarm) and per dispatch (every non-police case).
-- Keyed by event_id: derived events have deterministic ids, so a re-sent decision collapses.
CREATE TABLE IF NOT EXISTS triage
(
    event_id        String,
    case_id         String,
    occurred_at     DateTime64(3, 'UTC'),
    category        LowCardinality(String),
    priority        UInt8,
    disposition     LowCardinality(String),
    rule            LowCardinality(String),
    reason          String,
    street_code     Nullable(String),
    grid_code       Nullable(String),
    place           Nullable(String),
    location_rule   LowCardinality(String),
    location_notes  Array(String),
    caller_token    Nullable(String),
    ingested_at     DateTime64(3, 'UTC'),
    kafka_topic     LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset    UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (occurred_at, event_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS dispatches
(
    event_id        String,
    case_id         String,
    occurred_at     DateTime64(3, 'UTC'),
    category        LowCardinality(String),
    priority        UInt8,
    street_code     LowCardinality(String),
    grid_code       Nullable(String),
    team            LowCardinality(String),
    level           LowCardinality(String),
    assignee_id     Nullable(String),
    accept_by       DateTime64(3, 'UTC'),
    contact_by      DateTime64(3, 'UTC'),
    arrive_by       DateTime64(3, 'UTC'),
    rule            LowCardinality(String),
    place           Nullable(String),
    ingested_at     DateTime64(3, 'UTC'),
    kafka_topic     LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset    UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (occurred_at, event_id)
SETTINGS non_replicated_deduplication_window = 10000;

-- The SLA policy rule that set the deadlines (CaseDispatched v2; NULL on v1 records).
ALTER TABLE dispatches ADD COLUMN IF NOT EXISTS sla_rule Nullable(String) AFTER place;

-- The street command room's queue: alarms nobody could route automatically, oldest first.
CREATE VIEW IF NOT EXISTS v_review_queue AS
SELECT case_id, toTimeZone(occurred_at, 'Asia/Shanghai') AS received_local, category, priority, rule, reason,
       street_code, grid_code, place, location_rule, location_notes
FROM triage
WHERE disposition = 'REVIEW'
ORDER BY occurred_at;

CREATE VIEW IF NOT EXISTS v_triage_summary AS
SELECT disposition, rule, count() AS alarms
FROM triage
GROUP BY disposition, rule
ORDER BY disposition, alarms DESC;

-- Routing by street, grid, force and rule; grid '' is the street's pool.
CREATE VIEW IF NOT EXISTS v_routing AS
SELECT street_code, ifNull(grid_code, '') AS grid_code, team, level, rule, count() AS cases,
       uniqExact(assignee_id) AS assignees
FROM dispatches
GROUP BY street_code, grid_code, team, level, rule
ORDER BY street_code, grid_code, team, level, rule;

CREATE VIEW IF NOT EXISTS v_workload AS
SELECT street_code, team, ifNull(assignee_id, 'COMMAND_ROOM') AS assignee, count() AS cases
FROM dispatches
GROUP BY street_code, team, assignee
ORDER BY street_code, team, cases DESC;
