-- Views over several projections. Views hold no data, so they are replaced at every start:
-- changing one is editing it here.

-- Every view below means the same under every session: none relies on join_use_nulls (a read-only
-- session drops a view's own SETTINGS), on the session time zone, or on which of two equal rows an
-- aggregate meets first. Right-hand sides of LEFT JOINs are Nullable by construction (toNullable, OrNull
-- aggregates) or read through ifNull; argMax keys end with a unique column; zones are always named.

-- The field events the case engine accepted: every lifecycle row but those it refused and dead-lettered
-- (an Orphan, whose dispatch never came). `lifecycle` keeps everything that arrived. GLOBAL: on a cluster the
-- dead letters are read once and sent to every shard (one server reads them once anyway).
CREATE OR REPLACE VIEW v_lifecycle AS
SELECT *
FROM lifecycle
WHERE (kafka_topic, kafka_partition, kafka_offset) GLOBAL NOT IN
      (SELECT source_topic, source_partition, source_offset FROM deadletters);

-- Current state, one row per dispatched case, folded from its facts at query time (so it is
-- always consistent with them, and a replay cannot leave an old version behind). A stage is met
-- at the earliest event of that stage or a later one; the latest conclusion (by time, then event id) is
-- the outcome, as in the stream's statistics, with its compensation even when that is a correction to none;
-- repeat_of links a repeat call to its predecessor.
CREATE OR REPLACE VIEW cases AS
WITH
    f AS (
        SELECT case_id,
               minOrNullIf(occurred_at, type IN ('InstructionAccepted', 'PartyContacted', 'ResponderArrived'))
                   AS accepted_at,
               minOrNullIf(occurred_at, type IN ('PartyContacted', 'ResponderArrived')) AS contacted_at,
               minOrNullIf(occurred_at, type = 'ResponderArrived') AS arrived_at,
               minOrNullIf(occurred_at, type = 'MediationConcluded') AS concluded_at,
               minOrNullIf(occurred_at, type = 'CaseClosed') AS closed_at,
               -- a tuple, so a NULL outcome or compensation is taken, not skipped
               argMaxIf(tuple(outcome, compensation), (occurred_at, event_id), type = 'MediationConcluded') AS latest,
               maxOrNullIf(occurred_at, type = 'MediationConcluded') AS outcome_at,
               toNullable(countIf(type = 'MediationConcluded')) AS conclusions,
               groupUniqArrayIf(assumeNotNull(worker_id), worker_id IS NOT NULL) AS actors
        FROM v_lifecycle GROUP BY case_id
    ),
    b AS (
        SELECT case_id, toNullable(countIf(stage = 'ACCEPT') > 0) AS accept_breached,
               toNullable(countIf(stage = 'CONTACT') > 0) AS contact_breached,
               toNullable(countIf(stage = 'ARRIVE') > 0) AS arrive_breached
        FROM sla_breaches GROUP BY case_id
    ),
    r AS (
        SELECT case_id, toNullable(count()) AS reassignments, tupleElement(argMax(tuple(to_assignee), step), 1) AS current_assignee,
               groupUniqArrayIf(assumeNotNull(to_assignee), to_assignee IS NOT NULL) AS reassigned_to
        FROM reassignments GROUP BY case_id
    )
SELECT d.case_id AS case_id, d.occurred_at AS dispatched_at, d.category AS category, d.priority AS priority,
       d.street_code AS street_code, d.grid_code AS grid_code, d.team AS team, d.level AS level,
       d.assignee_id AS assignee_id,
       if(ifNull(r.reassignments, 0) > 0, r.current_assignee, d.assignee_id) AS current_assignee,
       d.sla_rule AS sla_rule, d.accept_by AS accept_by, d.contact_by AS contact_by, d.arrive_by AS arrive_by,
       f.accepted_at AS accepted_at, f.contacted_at AS contacted_at, f.arrived_at AS arrived_at,
       f.concluded_at AS concluded_at, f.closed_at AS closed_at,
       if(ifNull(f.conclusions, 0) > 0, tupleElement(f.latest, 1), NULL) AS outcome, f.outcome_at AS outcome_at,
       if(ifNull(f.conclusions, 0) > 0, tupleElement(f.latest, 2), NULL) AS compensation,
       ifNull(b.accept_breached, 0) AS accept_breached, ifNull(b.contact_breached, 0) AS contact_breached,
       ifNull(b.arrive_breached, 0) AS arrive_breached, ifNull(r.reassignments, 0) AS reassignments,
       dateDiff('millisecond', d.occurred_at, f.accepted_at) / 1000 AS accept_s,
       dateDiff('millisecond', d.occurred_at, f.contacted_at) / 1000 AS contact_s,
       dateDiff('millisecond', d.occurred_at, f.arrived_at) / 1000 AS arrive_s,
       f.actors AS actors,
       arrayExists(a -> a != ifNull(d.assignee_id, '') AND NOT has(r.reassigned_to, a), f.actors)
           AS acted_by_other,
       rc.repeat_of AS repeat_of, rc.repeat_reasons AS repeat_reasons
FROM (SELECT * FROM dispatches ORDER BY occurred_at, event_id LIMIT 1 BY case_id) AS d
LEFT JOIN f ON f.case_id = d.case_id
LEFT JOIN b ON b.case_id = d.case_id
LEFT JOIN r ON r.case_id = d.case_id
LEFT JOIN v_repeat_calls AS rc ON rc.case_id = d.case_id;

-- Time from dispatch to conclusion (the latest conclusion, as counted), by street and force: nearest-rank
-- quantiles over every concluded case, the same cases and definition as the stream's p50_ms and p90_ms.
CREATE OR REPLACE VIEW v_conclusion_time AS
SELECT street_code, team, count() AS concluded,
       round(alarmflow_nearest_rank(groupArray(d), 500) / 60000, 1) AS p50_min,
       round(alarmflow_nearest_rank(groupArray(d), 900) / 60000, 1) AS p90_min
FROM
(
    SELECT street_code, team, greatest(dateDiff('millisecond', dispatched_at, outcome_at), 0) AS d
    FROM cases
    WHERE outcome IS NOT NULL
)
GROUP BY street_code, team
ORDER BY street_code, team;

-- One row per (dispatched case, stage): met on time, breached, cancelled (concluded or closed
-- before the deadline, with the stage unmet), or open (not decided yet).
CREATE OR REPLACE VIEW case_stages AS
SELECT case_id, street_code, grid_code, team, toDate(toTimeZone(dispatched_at, 'Asia/Shanghai')) AS local_day,
       stage, deadline, met_at, duration_s,
       multiIf(breached, 'breached',
               met_at IS NOT NULL AND met_at <= deadline, 'met',
               cancelled_at IS NOT NULL AND cancelled_at <= deadline, 'cancelled',
               'open') AS status
FROM
(
    SELECT case_id, street_code, grid_code, team, dispatched_at,
           least(ifNull(concluded_at, toDateTime64('2262-01-01', 3, 'UTC')),
                 ifNull(closed_at, toDateTime64('2262-01-01', 3, 'UTC'))) AS cancel_at,
           if(cancel_at >= toDateTime64('2262-01-01', 3, 'UTC'), NULL, cancel_at) AS cancelled_at,
           arrayJoin([('ACCEPT', accept_by, accepted_at, accept_s, accept_breached),
                      ('CONTACT', contact_by, contacted_at, contact_s, contact_breached),
                      ('ARRIVE', arrive_by, arrived_at, arrive_s, arrive_breached)]) AS s,
           s.1 AS stage, s.2 AS deadline, s.3 AS met_at, s.4 AS duration_s, s.5 AS breached
    FROM cases
);

-- SLA compliance per stage, by street, grid, force and local day (Asia/Shanghai).
-- within_target = met / (met + breached): cancelled and open stages are excluded from the
-- fraction and shown as counts. Quantiles are of the time from dispatch to the stage, over every
-- case that reached it (late ones included), because means hide the tail.
CREATE OR REPLACE VIEW v_sla_compliance AS
SELECT local_day, street_code, ifNull(grid_code, '') AS grid_code, team, stage,
       countIf(status = 'met') AS met, countIf(status = 'breached') AS breached,
       countIf(status = 'cancelled') AS cancelled, countIf(status = 'open') AS open,
       if(met + breached = 0, NULL, round(met / (met + breached), 4)) AS within_target,
       round(alarmflow_nearest_rank(groupArrayIf(assumeNotNull(duration_s), duration_s IS NOT NULL), 500), 1) AS p50_s,
       round(alarmflow_nearest_rank(groupArrayIf(assumeNotNull(duration_s), duration_s IS NOT NULL), 900), 1) AS p90_s,
       round(alarmflow_nearest_rank(groupArrayIf(assumeNotNull(duration_s), duration_s IS NOT NULL), 950), 1) AS p95_s
FROM case_stages
GROUP BY local_day, street_code, grid_code, team, stage
ORDER BY local_day, street_code, grid_code, team, stage;

CREATE OR REPLACE VIEW v_sla_by_stage AS
SELECT stage, countIf(status = 'met') AS met, countIf(status = 'breached') AS breached,
       countIf(status = 'cancelled') AS cancelled, countIf(status = 'open') AS open,
       if(met + breached = 0, NULL, round(met / (met + breached), 4)) AS within_target,
       round(alarmflow_nearest_rank(groupArrayIf(assumeNotNull(duration_s), duration_s IS NOT NULL), 500), 1) AS p50_s,
       round(alarmflow_nearest_rank(groupArrayIf(assumeNotNull(duration_s), duration_s IS NOT NULL), 900), 1) AS p90_s,
       round(alarmflow_nearest_rank(groupArrayIf(assumeNotNull(duration_s), duration_s IS NOT NULL), 950), 1) AS p95_s
FROM case_stages
GROUP BY stage
ORDER BY indexOf(['ACCEPT', 'CONTACT', 'ARRIVE'], stage);
