SELECT id, epoch, segment_table::text AS segment_table
  FROM offload.segments
 WHERE state = 'committed' AND segment_table IS NOT NULL;
