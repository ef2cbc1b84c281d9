-- Dead-letter re-drives (alarmflow deadletter redrive): one row per DeadLetterRedriven, i.e. per dead letter whose
-- original bytes were published again, with where they went. What became of them is read from the other
-- projections at query time (v_deadletter_redrives), so it is always consistent with them.
CREATE TABLE IF NOT EXISTS deadletter_redrives
(
    event_id             String,
    origin               String COMMENT 'topic/partition/offset of the original message (the dead letter''s origin)',
    error_class          LowCardinality(String),
    deadletter_topic     LowCardinality(String),
    deadletter_partition UInt32,
    deadletter_offset    UInt64,
    redrive_topic        LowCardinality(String),
    redrive_partition    UInt32,
    redrive_offset       UInt64,
    occurred_at          DateTime64(3, 'UTC') COMMENT 'when the re-sent record was acknowledged',
    ingested_at          DateTime64(3, 'UTC'),
    kafka_topic          LowCardinality(String),
    kafka_partition      UInt32,
    kafka_offset         UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (origin, event_id)
SETTINGS non_replicated_deduplication_window = 10000;

-- Each re-drive and its outcome: 'dead-lettered again' (with the new reason) when the re-sent record was itself
-- dead-lettered, 'accepted' when the projector took it and nothing dead-lettered it, 'pending' before either.
-- A re-sent event that downstream recognises as already processed (its event id, or its alarm id) is
-- 'accepted' here and changes nothing further: the agents' own deduplication decides that.
CREATE OR REPLACE VIEW v_deadletter_redrives AS
SELECT r.origin AS origin, r.error_class AS error_class, r.occurred_at AS redriven_at,
       concat(r.redrive_topic, '/', toString(r.redrive_partition), '/', toString(r.redrive_offset)) AS redriven_as,
       concat(r.deadletter_topic, '/', toString(r.deadletter_partition), '/', toString(r.deadletter_offset))
           AS dead_letter_at,
       multiIf(ifNull(a.letters, 0) > 0, 'dead-lettered again', ifNull(e.rows, 0) > 0, 'accepted', 'pending')
           AS outcome,
       ifNull(a.new_class, '') AS again_class, ifNull(a.new_reason, '') AS again_reason,
       ifNull(e.event_type, '') AS event_type, ifNull(e.event_case, '') AS case_id
FROM (SELECT * FROM deadletter_redrives ORDER BY occurred_at, event_id LIMIT 1 BY event_id) AS r
LEFT JOIN
(
    SELECT source_topic, source_partition, source_offset, toNullable(count()) AS letters,
           toNullable(min(error_class)) AS new_class, toNullable(min(reason)) AS new_reason
    FROM deadletters
    WHERE (source_topic, source_partition, source_offset) GLOBAL IN
          (SELECT redrive_topic, redrive_partition, redrive_offset FROM deadletter_redrives)
    GROUP BY source_topic, source_partition, source_offset
) AS a ON a.source_topic = r.redrive_topic AND a.source_partition = r.redrive_partition
      AND a.source_offset = r.redrive_offset
LEFT JOIN
(
    SELECT kafka_topic, kafka_partition, kafka_offset, toNullable(count()) AS rows,
           toNullable(min(type)) AS event_type, toNullable(min(case_id)) AS event_case
    FROM events
    WHERE (kafka_topic, kafka_partition, kafka_offset) GLOBAL IN
          (SELECT redrive_topic, redrive_partition, redrive_offset FROM deadletter_redrives)
    GROUP BY kafka_topic, kafka_partition, kafka_offset
) AS e ON e.kafka_topic = r.redrive_topic AND e.kafka_partition = r.redrive_partition
      AND e.kafka_offset = r.redrive_offset
ORDER BY redriven_at, origin;

-- Every dead letter once, with its latest re-drive and that re-drive's outcome ('' and NULL: never re-driven).
CREATE OR REPLACE VIEW v_deadletter_status AS
SELECT d.origin AS origin, d.error_class AS error_class, d.reason AS reason, d.source_topic AS source_topic,
       d.occurred_at AS received_at, ifNull(x.redrives, 0) AS redrives, x.last_at AS redriven_at,
       ifNull(x.last_as, '') AS redriven_as, ifNull(x.last_outcome, '') AS outcome,
       ifNull(x.last_reason, '') AS again_reason
FROM v_deadletters AS d
LEFT JOIN
(
    SELECT origin, toNullable(count()) AS redrives, toNullable(max(redriven_at)) AS last_at,
           toNullable(argMax(redriven_as, (redriven_at, redriven_as))) AS last_as,
           toNullable(argMax(outcome, (redriven_at, redriven_as))) AS last_outcome,
           toNullable(argMax(again_reason, (redriven_at, redriven_as))) AS last_reason
    FROM v_deadletter_redrives
    GROUP BY origin
) AS x ON x.origin = d.origin
ORDER BY received_at, origin;
