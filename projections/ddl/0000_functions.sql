-- Functions the views use; created first, so any view may call them.

-- Quantiles everywhere are nearest-rank: the ceil(q·n)-th smallest value (an observed value, never an
-- interpolation), with q in per mille and integer arithmetic; NULL for no values. The stream's p90_ms
-- uses the same definition (streams.domain.outcomes.nearest_rank).
CREATE OR REPLACE FUNCTION alarmflow_nearest_rank AS (values, q_per_mille) ->
    if(empty(values), NULL, arraySort(values)[greatest(1, intDiv(q_per_mille * length(values) + 999, 1000))]);
