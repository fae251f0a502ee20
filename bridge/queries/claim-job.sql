-- Claims the next due job, or one whose bridge stopped heartbeating ($2 ms ago), for worker $1.
-- A job taken over from a bridge that stopped heartbeating (killed, cut off) runs again without
-- using an attempt, while its retries are fewer than $4; past that the lost run counts. A job
-- that would need an attempt beyond the limit ($3) is failed here instead of claimed (state
-- 'failed' in the row returned), so attempts never exceed the limit.
WITH next AS (
  SELECT id, state = 'running' AS taken_over, state = 'running' AND retries < $4 AS free
    FROM offload.jobs
   WHERE (state = 'queued' AND run_after <= now())
      OR (state = 'running' AND heartbeat_at < now() - make_interval(secs => $2::float8 / 1000))
   ORDER BY run_after, id
   LIMIT 1
   FOR UPDATE SKIP LOCKED
), claim AS (
  SELECT n.*, NOT n.free AND j.attempts >= $3 AS gives_up,
         CASE WHEN n.taken_over
              THEN 'taken over from ' || j.locked_by || ', which stopped heartbeating' END AS takeover
    FROM next n JOIN offload.jobs j USING (id)
)
UPDATE offload.jobs j
   SET state = CASE WHEN c.gives_up THEN 'failed' ELSE 'running' END,
       locked_by = CASE WHEN c.gives_up THEN NULL ELSE $1 END,
       locked_at = now(),
       heartbeat_at = now(),
       finished_at = CASE WHEN c.gives_up THEN now() ELSE j.finished_at END,
       attempts = CASE WHEN c.free OR c.gives_up THEN j.attempts ELSE j.attempts + 1 END,
       retries = j.retries + CASE WHEN c.free THEN 1 ELSE 0 END,
       started_at = coalesce(j.started_at, now()),
       -- The attempt starts from what earlier attempts kept; what the last one had done beyond
       -- that (rows of a segment it did not commit) is gone.
       base_segments = j.kept_segments, base_rows = j.kept_rows, base_bytes = j.kept_bytes,
       segments_done = j.kept_segments, rows_done = j.kept_rows, bytes_done = j.kept_bytes,
       last_error = CASE WHEN c.gives_up
                         THEN format('gave up after %s attempts; the last: %s', j.attempts,
                                     coalesce(c.takeover, j.last_error))
                         ELSE coalesce(c.takeover, j.last_error) END
  FROM claim c
 WHERE j.id = c.id
RETURNING j.id, j.state, j.table_id::text AS table_name, j.table_id::oid AS table_oid, j.kind,
          j.attempts, j.retries, j.params, j.requested_by;
