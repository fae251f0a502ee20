-- The first statement of an offload's REPEATABLE READ transaction: its snapshot is the one the
-- COPY and the commit will see.
SELECT offload.segment_copy_statement($1) AS sql;
