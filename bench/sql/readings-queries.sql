-- name: full
SELECT metric, count(*), avg(value), max(reading), count(tags), sum(length(note))
  FROM {table} GROUP BY metric ORDER BY metric;

-- name: day
-- One day out of the cold months, 200 days ago. Constants, as {day_from} and {day_to} are
-- filled in: constraint exclusion happens at plan time and cannot use now().
SELECT count(*), avg(value), max(reading)
  FROM {table}
 WHERE recorded_at >= '{day_from}' AND recorded_at < '{day_to}';

-- name: point
-- One row by its primary key, from the oldest (cold) rows.
SELECT * FROM {table} WHERE id = 200;

-- name: join100
-- 100 ids looked up by a join, all of them cold.
SELECT count(*), sum(r.value) FROM generate_series(100, 10000, 100) AS k(id) JOIN {table} r ON r.id = k.id;
