-- One job's state and progress, as `pg-offload run` follows it.
SELECT state, last_error, attempts, segments_total, segments_done, rows_done, bytes_done
  FROM offload.jobs WHERE id = $1;
