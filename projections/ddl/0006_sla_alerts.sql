-- The warnings before a breach, one row per (case, stage, kind), keyed by event_id (derived from all three):
-- SlaAtRisk when a case-events partition's clock (without the allowed lateness) passed deadline - lead with the
-- stage unmet, SlaOverdue when it passed the deadline. Both are provisional; sla_breaches has the final word.
CREATE TABLE IF NOT EXISTS sla_alerts
(
    event_id        String,
    type            LowCardinality(String),
    case_id         String,
    stage           LowCardinality(String),
    deadline        DateTime64(3, 'UTC'),
    occurred_at     DateTime64(3, 'UTC'),
    lead_ms         Nullable(Int64),
    street_code     LowCardinality(String),
    grid_code       Nullable(String),
    team            LowCardinality(String),
    assignee_id     Nullable(String),
    sla_rule        Nullable(String),
    ingested_at     DateTime64(3, 'UTC'),
    kafka_topic     LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset    UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (occurred_at, event_id)
SETTINGS non_replicated_deduplication_window = 10000;

-- What became of the warnings, per stage. A stage's fate is its case_stages status: `met` (on time: for an
-- overdue warning, a field event up to the lateness late met it, so no breach followed), `breached`,
-- `cancelled` (concluded or closed by the deadline) or `open` (not decided yet, or the dispatch not projected
-- yet). Like 0005_views.sql, the same under every session: the joined status is Nullable by construction and
-- read through ifNull, so join_use_nulls changes nothing; no time zone is involved.
CREATE OR REPLACE VIEW v_sla_alert_outcomes AS
SELECT stage,
       uniqExactIf(event_id, type = 'SlaAtRisk') AS at_risk,
       uniqExactIf(event_id, type = 'SlaAtRisk' AND status = 'met') AS at_risk_met_in_time,
       uniqExactIf(event_id, type = 'SlaAtRisk' AND status = 'breached') AS at_risk_breached,
       uniqExactIf(event_id, type = 'SlaOverdue') AS overdue,
       uniqExactIf(event_id, type = 'SlaOverdue' AND status = 'met') AS overdue_met_in_time,
       uniqExactIf(event_id, type = 'SlaOverdue' AND status = 'breached') AS overdue_breached,
       uniqExactIf(event_id, type = 'SlaOverdue' AND status = 'cancelled') AS overdue_cancelled,
       uniqExactIf(event_id, type = 'SlaOverdue' AND status = 'open') AS overdue_open,
       if(overdue_met_in_time + overdue_breached = 0, NULL,
          round(overdue_breached / (overdue_met_in_time + overdue_breached), 4)) AS overdue_breach_share
FROM
(
    SELECT a.event_id AS event_id, a.type AS type, a.stage AS stage, ifNull(s.status, 'open') AS status
    FROM sla_alerts AS a
    LEFT JOIN (SELECT case_id, stage, toNullable(status) AS status FROM case_stages) AS s
           ON s.case_id = a.case_id AND s.stage = a.stage
)
GROUP BY stage
ORDER BY indexOf(['ACCEPT', 'CONTACT', 'ARRIVE'], stage);
