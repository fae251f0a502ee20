-- name: full
SELECT metric, count(*), avg(value), max(reading), count(tags), sum(length(note))
  FROM {table} GROUP BY metric ORDER BY metric;

-- name: day
-- One day out of the cold months.
SELECT count(*), avg(value), max(reading)
  FROM {table}
 WHERE recorded_at >= date_trunc('day', now() - interval '200 days')
   AND recorded_at < date_trunc('day', now() - interval '199 days');
