-- Gives job $1 back to the queue because its bridge is stopping: due at once for the next bridge,
-- and the attempt not counted, since nothing failed.
UPDATE offload.jobs
   SET state = 'queued', locked_by = NULL, attempts = greatest(attempts - 1, 0),
       last_error = 'stopped with bridge ' || $2 || '; queued again', run_after = now()
 WHERE id = $1 AND locked_by = $2;
