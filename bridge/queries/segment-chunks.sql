-- What the read endpoint needs to serve segment $1 at epoch $2: its state, how stored rows map to
-- the segment table's columns of today, its chunks in order, and whether the read must come from
-- the store itself: offload.verify_segment() holds an advisory lock on the segment while it
-- reads, and a verification that read the bridge's cache would prove nothing about the store.
WITH plan AS MATERIALIZED (SELECT offload.segment_read_plan($1, $2) AS read_plan)
SELECT s.table_id::text AS table_name, s.state, s.rows AS segment_rows,
       (SELECT read_plan FROM plan) AS read_plan,
       (SELECT offload.segment_being_verified($1)) AS from_store, -- once, not per chunk
       c.seq, c.object_key, c.rows, c.raw_bytes, c.stored_bytes
  FROM offload.segments s
  LEFT JOIN offload.chunks c ON c.segment_id = s.id AND c.epoch = $2
 WHERE s.id = $1
 ORDER BY c.seq;
