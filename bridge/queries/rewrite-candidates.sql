-- The committed segments of table $1 for rewrite job $2, with what the job already did to each: a
-- retried or taken-over job skips the segments an earlier attempt swapped.
SELECT s.id, s.epoch, s.rows, s.segment_table::text AS segment_table,
       r.segment_id IS NOT NULL AS done, coalesce(r.matched_rows, 0) AS matched_rows
  FROM offload.segments s
  LEFT JOIN offload.rewritten_segments r ON r.segment_id = s.id AND r.job_id = $2
 WHERE s.table_id = $1::oid::regclass AND (s.state = 'committed' OR r.segment_id IS NOT NULL)
 ORDER BY s.id;
