-- What users look at: offload.tables (one row per table with offloaded data or a policy) and
-- offload.describe() (one row per stored object).

-- offload.tables for a partitioned table: its own pg_class row holds no rows (reltuples -1, so a
-- NULL estimate) and no storage (pg_table_size 0), however many rows its hot partitions hold. The
-- hot figures of a partitioned table are the sums over its leaf partitions that are heap tables
-- (the offloaded ones are foreign tables, counted as cold); those never analyzed have no estimate
-- and add none. A plain table keeps its own figures (its segment tables are foreign, and cold).
-- Rows of tables the caller manages only: said here as well as by the catalog's row security,
-- which a view applies as its caller only with security_invoker (PostgreSQL 15 and later).
CREATE OR REPLACE VIEW offload.tables AS
WITH known AS (
  SELECT table_id FROM offload.attachments WHERE offload.owns_table(table_id)
  UNION
  SELECT table_id FROM offload.segments WHERE state = 'committed' AND offload.owns_table(table_id)
),
hot AS (
  SELECT k.table_id,
         CASE WHEN c.relkind <> 'p' THEN
                CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint END
              ELSE (SELECT sum(p.reltuples) FILTER (WHERE p.reltuples >= 0)::bigint
                      FROM pg_partition_tree(k.table_id) t
                      JOIN pg_class p ON p.oid = t.relid
                     WHERE t.isleaf AND p.relkind = 'r')
         END AS hot_rows_estimate,
         CASE WHEN c.relkind <> 'p' THEN pg_table_size(k.table_id)
              ELSE (SELECT coalesce(sum(pg_table_size(t.relid)), 0)::bigint
                      FROM pg_partition_tree(k.table_id) t
                      JOIN pg_class p ON p.oid = t.relid
                     WHERE t.isleaf AND p.relkind = 'r')
         END AS hot_bytes
    FROM known k
    JOIN pg_class c ON c.oid = k.table_id
)
SELECT k.table_id AS table_name,
       a.policy_name AS policy,
       h.hot_rows_estimate,
       h.hot_bytes,
       count(s.id) AS cold_segments,
       coalesce(sum(s.rows), 0)::bigint AS cold_rows,
       coalesce(sum(s.raw_bytes), 0)::bigint AS cold_raw_bytes,
       coalesce(sum(s.stored_bytes), 0)::bigint AS cold_stored_bytes,
       max(s.committed_at) AS last_offload_at
  FROM known k
  JOIN hot h ON h.table_id = k.table_id
  LEFT JOIN offload.attachments a ON a.table_id = k.table_id
  LEFT JOIN offload.segments s ON s.table_id = k.table_id AND s.state = 'committed'
 GROUP BY k.table_id, a.policy_name, h.hot_rows_estimate, h.hot_bytes;
-- The catalog's row security applies to the caller (PostgreSQL 15 and later). CREATE OR REPLACE
-- VIEW resets the view's options, so they are set again on every install.
DO $$
BEGIN
  IF current_setting('server_version_num')::int >= 150000 THEN
    ALTER VIEW offload.tables SET (security_invoker = true);
  END IF;
END $$;
GRANT SELECT ON offload.tables TO PUBLIC;

-- Objects, one row per chunk of every epoch, like Yezzey's description of external storage.
CREATE OR REPLACE FUNCTION offload.describe(table_name regclass)
RETURNS TABLE (segment_id bigint, segment_table regclass, state text, epoch int, current_epoch boolean,
               range_lo text, range_hi text, partition_name text, seq int, object_key text,
               rows bigint, raw_bytes bigint, stored_bytes bigint, crc32c bigint, created_at timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT s.id, s.segment_table, s.state, c.epoch, c.epoch = s.epoch, s.range_lo, s.range_hi,
         s.partition_name, c.seq, c.object_key, c.rows, c.raw_bytes, c.stored_bytes, c.crc32c,
         c.created_at
    FROM offload.segments s JOIN offload.chunks c ON c.segment_id = s.id
   WHERE s.table_id = table_name
   ORDER BY s.id, c.epoch, c.seq;
$$;
