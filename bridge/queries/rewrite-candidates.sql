-- The committed segments of table $1 that rewrite job $2 has still to do: a retried or taken-over
-- job skips the segments an earlier attempt swapped (the queue counts them from what it kept).
-- An offloaded partition detached from the table (pg_partman's retention, by hand) is no longer
-- the table's: a DELETE on the table would not reach it either.
SELECT s.id, s.epoch, s.rows, s.segment_table::text AS segment_table
  FROM offload.segments s
 WHERE s.table_id = $1::oid::regclass AND s.state = 'committed'
   AND offload.segment_in_its_table(s)
   AND NOT EXISTS (SELECT FROM offload.rewritten_segments r WHERE r.job_id = $2 AND r.segment_id = s.id)
 ORDER BY s.id;
