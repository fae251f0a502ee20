-- A rewrite's first transaction: no ALTER TABLE until it ends, and the columns it reads, which the
-- swap checks again.
SELECT format('LOCK TABLE ONLY %s IN ACCESS SHARE MODE', s.table_id) AS lock_sql,
       offload.column_fingerprint(s.table_id) AS fingerprint
  FROM offload.segments s WHERE s.id = $1;
