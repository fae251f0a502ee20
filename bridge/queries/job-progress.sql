-- Job $1's progress, from worker $2's running attempt: its own work ($3-$6) and the part of it no
-- later attempt redoes ($7-$9), each added to what earlier attempts kept (base_*).
UPDATE offload.jobs
   SET segments_total = base_segments + $3, segments_done = base_segments + $4,
       rows_done = base_rows + $5, bytes_done = base_bytes + $6,
       kept_segments = base_segments + $7, kept_rows = base_rows + $8, kept_bytes = base_bytes + $9,
       heartbeat_at = now()
 WHERE id = $1 AND locked_by = $2;
