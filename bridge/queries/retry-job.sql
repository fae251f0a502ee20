-- Puts job $1 back in the queue after a failure, to run again in $4 ms.
UPDATE offload.jobs
   SET state = 'queued', locked_by = NULL, last_error = $3,
       run_after = now() + make_interval(secs => $4::float8 / 1000)
 WHERE id = $1 AND locked_by = $2;
