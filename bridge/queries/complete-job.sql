UPDATE offload.jobs
   SET state = 'succeeded', finished_at = now(), locked_by = NULL, last_error = NULL
 WHERE id = $1 AND locked_by = $2;
