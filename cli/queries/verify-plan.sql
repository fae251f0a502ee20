-- The committed segments pg-offload verify reads, one call of offload.verify_segment each.
SELECT id, rows, stored_bytes FROM offload.segments
 WHERE table_id = $1::regclass AND state = 'committed'
 ORDER BY id;
