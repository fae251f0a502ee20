-- For a partition: the LOCK that must run first in the offload's transaction (NULL for ranges).
SELECT offload.segment_lock_statement($1) AS sql;
