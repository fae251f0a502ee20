-- pg-offload status: the offload.tables view, sizes made readable, plus each table's latest job.
SELECT t.table_name::text AS "table", t.policy,
       t.hot_rows_estimate AS hot_rows, pg_size_pretty(t.hot_bytes) AS hot_size,
       t.cold_segments, t.cold_rows, pg_size_pretty(t.cold_stored_bytes) AS stored,
       to_char(t.last_offload_at, 'YYYY-MM-DD HH24:MI') AS last_offload,
       j.state || coalesce(' (' || left(j.last_error, 60) || ')', '') AS last_job
  FROM offload.tables t
  LEFT JOIN LATERAL (SELECT state, last_error FROM offload.jobs
                      WHERE table_id = t.table_name ORDER BY id DESC LIMIT 1) j ON true
 ORDER BY 1;
