UPDATE offload.jobs
   SET state = 'failed', finished_at = now(), locked_by = NULL, last_error = $3
 WHERE id = $1 AND (locked_by = $2 OR $2 IS NULL);
