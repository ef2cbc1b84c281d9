-- The raw immutable log: one row per consumed Kafka message that passed the contract.
-- Upstream duplicates (same event_id at another offset) stay as log rows; the v_ views count
-- each event_id once. The key ends with the Kafka coordinates, so a re-delivered message
-- collapses (second line of defence behind the insert deduplication token).
CREATE TABLE IF NOT EXISTS events
(
    event_id        String,
    type            LowCardinality(String),
    case_id         String COMMENT 'alarm_id for AlarmReceived; by contract the same id',
    source          LowCardinality(String),
    occurred_at     DateTime64(3, 'UTC'),
    ingested_at     DateTime64(3, 'UTC'),
    writer          LowCardinality(String) COMMENT 'writer schema version, e.g. AlarmReceived.v1',
    kafka_topic     LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset    UInt64,
    payload         String COMMENT 'the JSON form; personal fields replaced by token and mask'
)
ENGINE = ReplacingMergeTree
ORDER BY (event_id, kafka_topic, kafka_partition, kafka_offset)
SETTINGS non_replicated_deduplication_window = 10000;

-- The dead-letter topic's projection. No payload bytes: they may hold personal data.
CREATE TABLE IF NOT EXISTS deadletters
(
    event_id         String,
    origin           String,
    error_class      LowCardinality(String),
    reason           String,
    source_topic     LowCardinality(String),
    source_partition UInt32,
    source_offset    UInt64,
    payload_bytes    UInt32,
    payload_sha256   String,
    occurred_at      DateTime64(3, 'UTC'),
    ingested_at      DateTime64(3, 'UTC'),
    kafka_topic      LowCardinality(String),
    kafka_partition  UInt32,
    kafka_offset     UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (origin, kafka_topic, kafka_partition, kafka_offset)
SETTINGS non_replicated_deduplication_window = 10000;

-- Analysts count here: one row per event_id, the first delivery wins.
CREATE VIEW IF NOT EXISTS v_events AS
SELECT *
FROM events
ORDER BY event_id, kafka_topic, kafka_partition, kafka_offset
LIMIT 1 BY event_id;

CREATE VIEW IF NOT EXISTS v_event_counts AS
SELECT type, count() AS events, min(occurred_at) AS first_at, max(occurred_at) AS last_at
FROM v_events
GROUP BY type
ORDER BY type;

-- Facts about the sources: the same event_id published more than once.
CREATE VIEW IF NOT EXISTS v_upstream_duplicates AS
SELECT event_id, any(type) AS type, count() AS deliveries, groupArray(kafka_offset) AS offsets
FROM events
GROUP BY event_id
HAVING deliveries > 1;

CREATE VIEW IF NOT EXISTS v_deadletters AS
SELECT *
FROM deadletters
ORDER BY origin, kafka_topic, kafka_partition, kafka_offset
LIMIT 1 BY origin;

CREATE VIEW IF NOT EXISTS v_deadletter_counts AS
SELECT source_topic, error_class, count() AS messages
FROM v_deadletters
GROUP BY source_topic, error_class
ORDER BY source_topic, error_class;
