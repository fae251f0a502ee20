-- Verification: re-reading every chunk of a table's segments from the store.
--
-- The bridge keeps a cache of chunks (storage/chunk-cache.ts). A verification must read the
-- store, not the cache: offload.verify_segment holds a shared advisory lock on the segment while it
-- reads it, and the read endpoint serves a segment whose lock is held from the store alone
-- (bridge/queries/segment-chunks.sql). Scans running at the same time read the store too, which
-- costs time, never correctness. The lock and its test are defined together here.

-- Keys: "pgof" read as an integer, and the segment id as an int: ids 2^31 apart share a lock,
-- which only sends more reads to the store.
CREATE OR REPLACE FUNCTION offload.lock_segment_for_verify(segment bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  SELECT pg_advisory_xact_lock_shared(1885826918, (segment % 2147483648)::int);
$$;

CREATE OR REPLACE FUNCTION offload.segment_being_verified(segment bigint) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT EXISTS (SELECT FROM pg_locks l
                  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                    AND l.classid = 1885826918 AND l.objid = (segment % 2147483648)::oid);
$$;

-- Re-reads one committed segment through its reader (store -> CRC32C -> size and row count per
-- chunk against the index), under the lock above. Reads everything: slow on purpose.
CREATE OR REPLACE FUNCTION offload.verify_segment(segment bigint)
RETURNS TABLE (segment_id bigint, segment_table regclass, chunks bigint, rows_expected bigint,
               rows_read bigint, ok boolean, problem text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s offload.segments%ROWTYPE;
  context text;
BEGIN
  SELECT * INTO s FROM offload.segments WHERE id = segment AND state = 'committed';
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pg-offload: no committed segment %', segment USING ERRCODE = 'undefined_object';
  END IF;
  segment_id := s.id;
  segment_table := s.segment_table;
  rows_expected := s.rows;
  SELECT count(*) INTO chunks FROM offload.chunks c WHERE c.segment_id = s.id AND c.epoch = s.epoch;
  PERFORM offload.lock_segment_for_verify(s.id);
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
END $$;

-- Verifies every committed segment of the table (offload.verify_segment) and reports per segment.
CREATE OR REPLACE FUNCTION offload.verify(table_name regclass)
RETURNS TABLE (segment_id bigint, segment_table regclass, chunks bigint, rows_expected bigint,
               rows_read bigint, ok boolean, problem text)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  SELECT v.* FROM offload.segments s, offload.verify_segment(s.id) v
   WHERE s.table_id = table_name AND s.state = 'committed'
   ORDER BY s.id;
$$;
