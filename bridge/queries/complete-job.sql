-- locked_by stays, to show which bridge ran the job.
UPDATE offload.jobs
   SET state = 'succeeded', finished_at = now(), last_error = NULL
 WHERE id = $1 AND locked_by = $2;
