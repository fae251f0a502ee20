-- The parse limit: the offloaded table's rows, its hot ones in a heap and its cold ones as plain
-- COPY text files read by file_fdw with `cat`, one file per segment so that Parallel Append
-- spreads them as it spreads the segments. {table} is the offloaded table.
CREATE EXTENSION IF NOT EXISTS file_fdw;
CREATE SERVER IF NOT EXISTS bench_files FOREIGN DATA WRAPPER file_fdw;
CREATE TABLE {table}_parse (LIKE {table});
INSERT INTO {table}_parse SELECT * FROM ONLY {table};
ANALYZE {table}_parse;

DO $$
DECLARE
  s record;
  file text;
  child text;
BEGIN
  FOR s IN SELECT id, segment_table, rows FROM offload.segments
            WHERE table_id = '{table}'::regclass AND state = 'committed' ORDER BY id LOOP
    file := '{dir}/segment-' || s.id || '.copy';
    child := '{table}_parse_' || s.id;
    EXECUTE format('COPY (SELECT * FROM %s) TO %L', s.segment_table, file);
    EXECUTE format('CREATE FOREIGN TABLE %I () INHERITS (%I) SERVER bench_files OPTIONS (program %L, format %L)',
                   child, '{table}_parse', 'cat ' || file, 'text');
    -- As the bridge does for segment tables: without row counts no parallel plan is chosen.
    UPDATE pg_class SET reltuples = s.rows, relpages = 10 WHERE oid = child::regclass;
  END LOOP;
END $$;
