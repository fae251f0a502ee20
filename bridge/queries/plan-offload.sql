-- What is due on table $1 now: key ranges (partition_table NULL) or whole partitions.
SELECT partition_table::text AS partition_table, range_lo, range_hi
  FROM offload.plan_offload($1::oid::regclass, $2);
