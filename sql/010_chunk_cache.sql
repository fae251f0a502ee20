-- The bridge keeps a cache of chunks (storage/chunk-cache.ts). A verification must read the
-- store, not the cache: offload.verify holds a shared advisory lock on each segment while it reads
-- it, and the read endpoint serves a segment whose lock is held from the store alone
-- (bridge/queries/segment-chunks.sql). Scans running at the same time read the store too, which
-- costs time, never correctness.

-- The first key of the two-key advisory lock: "pgof" read as an integer.
CREATE FUNCTION offload.verify_lock_class() RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$ SELECT 1885826918 $$;

-- As in 006_lifecycle.sql, with the lock taken before each segment is read.
CREATE OR REPLACE FUNCTION offload.verify(table_name regclass)
RETURNS TABLE (segment_id bigint, segment_table regclass, chunks bigint, rows_expected bigint,
               rows_read bigint, ok boolean, problem text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s offload.segments%ROWTYPE;
  context text;
BEGIN
  FOR s IN SELECT * FROM offload.segments
            WHERE table_id = table_name AND state = 'committed' ORDER BY id LOOP
    segment_id := s.id;
    segment_table := s.segment_table;
    rows_expected := s.rows;
    SELECT count(*) INTO chunks FROM offload.chunks c WHERE c.segment_id = s.id AND c.epoch = s.epoch;
    rows_read := NULL;
    problem := NULL;
    -- The second key is an int: ids 2^31 apart share a lock, which only sends more reads to the store.
    PERFORM pg_advisory_xact_lock_shared(offload.verify_lock_class(), (s.id % 2147483648)::int);
    BEGIN
      EXECUTE format('SELECT count(*) FROM %s', s.segment_table) INTO rows_read;
      IF rows_read <> rows_expected THEN
        problem := format('read %s rows, the index says %s', rows_read, rows_expected);
      END IF;
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS context = PG_EXCEPTION_CONTEXT;
      -- The reader's own message travels in the CONTEXT line of the COPY error.
      problem := SQLERRM || coalesce(': ' || substring(context FROM 'COPY [^\n]*'), '');
    END;
    ok := problem IS NULL;
    RETURN NEXT;
  END LOOP;
END $$;
