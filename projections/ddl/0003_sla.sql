-- SLA facts: exactly one row per (case, stage) breach and per escalation step (keyed by event_id,
-- which is derived from case and stage, or case and step), and the field events each once.
CREATE TABLE IF NOT EXISTS sla_breaches
(
    event_id        String,
    case_id         String,
    stage           LowCardinality(String),
    deadline        DateTime64(3, 'UTC'),
    occurred_at     DateTime64(3, 'UTC'),
    street_code     LowCardinality(String),
    grid_code       Nullable(String),
    team            LowCardinality(String),
    assignee_id     Nullable(String),
    late_by_ms      Nullable(Int64),
    ingested_at     DateTime64(3, 'UTC'),
    kafka_topic     LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset    UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (occurred_at, event_id)
SETTINGS non_replicated_deduplication_window = 10000;

-- The SLA policy rule behind the deadline (SlaBreached v2; NULL on v1 records).
ALTER TABLE sla_breaches ADD COLUMN IF NOT EXISTS sla_rule Nullable(String) AFTER late_by_ms;

CREATE TABLE IF NOT EXISTS reassignments
(
    event_id        String,
    case_id         String,
    occurred_at     DateTime64(3, 'UTC'),
    street_code     LowCardinality(String),
    team            LowCardinality(String),
    from_assignee   Nullable(String),
    to_assignee     Nullable(String),
    level           LowCardinality(String),
    step            UInt16,
    reason          String,
    ingested_at     DateTime64(3, 'UTC'),
    kafka_topic     LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset    UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (occurred_at, event_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS lifecycle
(
    event_id        String,
    case_id         String,
    type            LowCardinality(String),
    occurred_at     DateTime64(3, 'UTC'),
    worker_id       Nullable(String),
    method          Nullable(String),
    outcome         Nullable(String),
    compensation    Nullable(Decimal(12, 2)),
    ingested_at     DateTime64(3, 'UTC'),
    kafka_topic     LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset    UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (case_id, event_id)
SETTINGS non_replicated_deduplication_window = 10000;
