-- Raises the same clear error a user would get if the table can no longer be offloaded.
SELECT offload.check_table($1::oid::regclass);
