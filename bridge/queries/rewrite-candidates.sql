-- The committed segments of table $1, for a rewrite job.
SELECT id, epoch, rows, segment_table::text AS segment_table
  FROM offload.segments
 WHERE table_id = $1::oid::regclass AND state = 'committed'
 ORDER BY id;
