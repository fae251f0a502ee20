-- name: everything
SELECT count(*) AS rows, max(created_at) AS newest, sum(amount) AS total FROM events;
-- name: last 7 days (hot)
SELECT count(*) AS rows, round(avg(amount), 3) AS avg_amount FROM events WHERE created_at >= '{recent}';
-- name: one old month (cold)
SELECT count(*) AS rows, count(DISTINCT device) AS devices FROM events WHERE created_at >= '{old_from}' AND created_at < '{old_to}';
