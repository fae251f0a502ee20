-- What the read endpoint needs to serve segment $1 at epoch $2: its state, how stored rows map to
-- the segment table's columns of today, and its chunks in order.
WITH plan AS MATERIALIZED (SELECT offload.segment_read_plan($1, $2) AS read_plan)
SELECT s.table_id::text AS table_name, s.state, s.rows AS segment_rows,
       (SELECT read_plan FROM plan) AS read_plan,
       c.seq, c.object_key, c.rows, c.raw_bytes, c.stored_bytes
  FROM offload.segments s
  LEFT JOIN offload.chunks c ON c.segment_id = s.id AND c.epoch = $2
 WHERE s.id = $1
 ORDER BY c.seq;
