UPDATE offload.jobs
   SET segments_total = $3, segments_done = $4, rows_done = $5, bytes_done = $6, heartbeat_at = now()
 WHERE id = $1 AND locked_by = $2;
