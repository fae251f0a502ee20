-- offload.verify one segment at a time, so that a caller (pg-offload verify) can report progress
-- between segments; offload.verify(table) now loops over it. Same checks, same advisory lock
-- (010_chunk_cache.sql): the segment is read from the store, never from the bridge's cache.
CREATE FUNCTION offload.verify_segment(segment bigint)
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
END $$;

CREATE OR REPLACE FUNCTION offload.verify(table_name regclass)
RETURNS TABLE (segment_id bigint, segment_table regclass, chunks bigint, rows_expected bigint,
               rows_read bigint, ok boolean, problem text)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  SELECT v.* FROM offload.segments s, offload.verify_segment(s.id) v
   WHERE s.table_id = table_name AND s.state = 'committed'
   ORDER BY s.id;
$$;
