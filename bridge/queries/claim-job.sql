-- Claims the next due job, or one whose bridge stopped heartbeating ($2 ms ago), for worker $1.
WITH next AS (
  SELECT id
    FROM offload.jobs
   WHERE (state = 'queued' AND run_after <= now())
      OR (state = 'running' AND heartbeat_at < now() - make_interval(secs => $2::float8 / 1000))
   ORDER BY run_after, id
   LIMIT 1
   FOR UPDATE SKIP LOCKED
)
UPDATE offload.jobs j
   SET state = 'running',
       locked_by = $1,
       locked_at = now(),
       heartbeat_at = now(),
       attempts = j.attempts + 1,
       started_at = coalesce(j.started_at, now()),
       last_error = CASE WHEN j.state = 'running'
                         THEN 'taken over from ' || j.locked_by || ', which stopped heartbeating'
                         ELSE j.last_error END
  FROM next
 WHERE j.id = next.id
RETURNING j.id, j.table_id::text AS table_name, j.table_id::oid AS table_oid, j.kind, j.attempts,
          j.params, j.requested_by;
