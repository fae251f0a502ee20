-- Puts job $1 back in the queue after a conflict with other sessions (serialization failure,
-- deadlock, lock timeout), to run again in $4 ms: the attempt is given back and counted as a
-- retry instead (the caller checks the retry bound).
UPDATE offload.jobs
   SET state = 'queued', locked_by = NULL, last_error = $3,
       attempts = greatest(attempts - 1, 0), retries = retries + 1,
       run_after = now() + make_interval(secs => $4::float8 / 1000)
 WHERE id = $1 AND locked_by = $2;
