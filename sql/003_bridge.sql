-- Functions the bridge calls to plan and commit offloads. They build statements with format(), so
-- every identifier is quoted in one place. Not for users: EXECUTE is revoked from PUBLIC.

-- The first key value that stays hot under the table's policy, as text (NULL: nothing is due).
CREATE FUNCTION offload.hot_cutoff(rel regclass) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  a offload.attachments%ROWTYPE;
  p offload.policies%ROWTYPE;
  newest numeric;
BEGIN
  SELECT * INTO a FROM offload.attachments WHERE table_id = rel;
  SELECT * INTO p FROM offload.policies WHERE name = a.policy_name;
  IF p.older_than IS NOT NULL THEN
    RETURN CASE a.key_type
      WHEN 'timestamptz'::regtype THEN (now() - p.older_than)::text
      WHEN 'timestamp'::regtype THEN (localtimestamp - p.older_than)::text
      ELSE (current_date - p.older_than)::date::text
    END;
  END IF;
  EXECUTE format('SELECT max(%I)::numeric FROM ONLY %s', a.key_column, rel) INTO newest;
  RETURN (newest - p.keep_last + 1)::text;
END $$;

-- Cuts the due rows of a table into key ranges [range_lo, range_hi) of about target_bytes of heap
-- each, with one sort of the due keys (percentile_disc).
CREATE FUNCTION offload.due_segments(rel regclass, target_bytes bigint)
RETURNS TABLE (range_lo text, range_hi text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  a offload.attachments%ROWTYPE;
  cutoff text := offload.hot_cutoff(rel);
  due_rows bigint;
  first_key text;
  all_rows float8;
  pieces int;
  bounds text[];
  b text;
BEGIN
  SELECT * INTO a FROM offload.attachments WHERE table_id = rel;
  IF cutoff IS NULL THEN
    RETURN;
  END IF;
  EXECUTE format('SELECT count(*), min(%1$I)::text FROM ONLY %2$s WHERE %1$I < %3$L::%4$s',
                 a.key_column, rel, cutoff, a.key_type)
    INTO due_rows, first_key;
  IF due_rows = 0 THEN
    RETURN;
  END IF;
  SELECT CASE WHEN reltuples > 0 THEN reltuples END INTO all_rows FROM pg_class WHERE oid = rel;
  IF all_rows IS NULL THEN
    EXECUTE format('SELECT count(*) FROM ONLY %s', rel) INTO all_rows;
  END IF;
  pieces := least(10000, greatest(1, ceil(
    due_rows * (pg_table_size(rel) / greatest(all_rows, 1)) / greatest(target_bytes, 1))))::int;
  IF pieces > 1 THEN
    EXECUTE format(
      'SELECT percentile_disc(%5$L::float8[]) WITHIN GROUP (ORDER BY %1$I)::text[]
         FROM ONLY %2$s WHERE %1$I < %3$L::%4$s',
      a.key_column, rel, cutoff, a.key_type,
      (SELECT array_agg(i::float8 / pieces) FROM generate_series(1, pieces - 1) i))
      INTO bounds;
  END IF;
  range_lo := first_key;
  FOR b IN SELECT u.v FROM unnest(bounds) WITH ORDINALITY u(v, n) ORDER BY u.n LOOP
    -- Repeated keys give repeated bounds; skip them (compared in the key's type, not as text).
    CONTINUE WHEN NOT offload.key_less(range_lo, b, a.key_type);
    range_hi := b;
    RETURN NEXT;
    range_lo := b;
  END LOOP;
  range_hi := cutoff;
  RETURN NEXT;
END $$;

CREATE FUNCTION offload.key_less(x text, y text, key_type regtype) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result boolean;
BEGIN
  EXECUTE format('SELECT %L::%2$s < %3$L::%2$s', x, key_type, y) INTO result;
  RETURN result;
END $$;

-- Records a pending segment (committed on its own, before any upload) and returns its id.
CREATE FUNCTION offload.begin_segment(job bigint, rel regclass, lo text, hi text, store text)
RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  INSERT INTO offload.segments
    (table_id, job_id, key_column, key_type, range_lo, range_hi, columns, encoding, store)
  SELECT a.table_id, job, a.key_column, a.key_type, lo, hi,
         (SELECT jsonb_agg(jsonb_build_object('name', attname, 'type', format_type(atttypid, atttypmod))
                           ORDER BY attnum)
            FROM pg_attribute WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped),
         pg_encoding_to_char(encoding), store
    FROM offload.attachments a, pg_database
   WHERE a.table_id = rel AND datname = current_database()
  RETURNING id;
$$;

CREATE FUNCTION offload.range_condition(s offload.segments) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
RETURN format('%1$I >= %2$L::%4$s AND %1$I < %3$L::%4$s', s.key_column, s.range_lo, s.range_hi, s.key_type);

-- The COPY statement that streams out exactly the rows of a pending segment.
CREATE FUNCTION offload.segment_copy_statement(segment bigint) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT format('COPY (SELECT * FROM ONLY %s WHERE %s) TO STDOUT', s.table_id, offload.range_condition(s))
    FROM offload.segments s WHERE s.id = segment;
$$;

-- A name that says what the table is, within PostgreSQL's 63-byte identifier limit.
CREATE FUNCTION offload.segment_table_name(parent name, segment bigint) RETURNS name
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  suffix text := '__offloaded_' || segment;
  base text := parent;
BEGIN
  WHILE octet_length(base || suffix) > 63 LOOP
    base := left(base, -1);
  END LOOP;
  RETURN base || suffix;
END $$;

-- The one transaction of an offload (DESIGN.md decision 4). Runs in the REPEATABLE READ
-- transaction whose snapshot the COPY read: records the chunks, creates the segment table, moves
-- the rows out of the heap and marks the segment committed. Fails, leaving everything as it was,
-- unless it deletes exactly the rows that were copied.
CREATE FUNCTION offload.commit_segment(segment bigint, chunks jsonb, reader_program text, copied_rows bigint)
RETURNS regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s offload.segments%ROWTYPE;
  parent pg_class%ROWTYPE;
  seg_name name;
  seg_table regclass;
  deleted bigint;
BEGIN
  SELECT * INTO s FROM offload.segments WHERE id = segment FOR UPDATE;
  IF s.state IS DISTINCT FROM 'pending' THEN
    RAISE EXCEPTION 'pg-offload: segment % is %, not pending', segment, coalesce(s.state, 'missing');
  END IF;
  SELECT * INTO parent FROM pg_class WHERE oid = s.table_id;

  -- A query planned before this commit and executed after it would miss the moved rows (its plan
  -- lacks the new segment table, its snapshot sees them deleted). Only ACCESS EXCLUSIVE waits for
  -- such queries; the caller's lock_timeout bounds the wait, and the job retries on timeout.
  EXECUTE format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', s.table_id);

  INSERT INTO offload.chunks (segment_id, epoch, seq, object_key, rows, raw_bytes, stored_bytes, crc32c, codec)
  SELECT segment, s.epoch, c.seq, c.object_key, c.rows, c.raw_bytes, c.stored_bytes, c.crc32c, c.codec
    FROM jsonb_to_recordset(chunks) AS c(seq int, object_key text, rows bigint, raw_bytes bigint,
                                         stored_bytes bigint, crc32c bigint, codec text);

  seg_name := offload.segment_table_name(parent.relname, segment);
  EXECUTE format(
    'CREATE FOREIGN TABLE %s.%I (CONSTRAINT %I CHECK (%s)) INHERITS (%s)
       SERVER pg_offload_reader OPTIONS (program %L, format ''text'', encoding %L)',
    parent.relnamespace::regnamespace, seg_name, seg_name || '_range', offload.range_condition(s),
    s.table_id, reader_program, s.encoding);
  seg_table := format('%s.%I', parent.relnamespace::regnamespace, seg_name)::regclass;
  EXECUTE format('ALTER FOREIGN TABLE %s OWNER TO %s', seg_table, parent.relowner::regrole);
  EXECUTE format('COMMENT ON FOREIGN TABLE %s IS %L', seg_table,
    format('pg-offload segment %s of %s: rows with %s, read-only', segment, s.table_id, offload.range_condition(s)));

  -- file_fdw cannot ANALYZE a program; tell the planner the row count we already know, with 10
  -- pages because file_fdw assumes 10 pages for a program and scales reltuples by that density.
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    UPDATE pg_class SET reltuples = copied_rows, relpages = 10 WHERE oid = seg_table;
  END IF;

  -- Moving rows is not deleting them: user triggers (audit, summaries) must not see it.
  PERFORM set_config('session_replication_role', 'replica', true);
  EXECUTE format('DELETE FROM ONLY %s WHERE %s', s.table_id, offload.range_condition(s));
  GET DIAGNOSTICS deleted = ROW_COUNT;
  PERFORM set_config('session_replication_role', 'origin', true);
  IF deleted <> copied_rows THEN
    RAISE EXCEPTION 'pg-offload: segment % of %: copied % rows but would delete %', segment, s.table_id, copied_rows, deleted
      USING ERRCODE = 'serialization_failure';
  END IF;

  UPDATE offload.segments
     SET state = 'committed', segment_table = seg_table, committed_at = now(), rows = copied_rows,
         raw_bytes = (SELECT sum(c.raw_bytes) FROM offload.chunks c WHERE c.segment_id = segment),
         stored_bytes = (SELECT sum(c.stored_bytes) FROM offload.chunks c WHERE c.segment_id = segment)
   WHERE id = segment;
  RETURN seg_table;
END $$;

-- Marks an attempt's pending segment as abandoned, so its objects can be collected at once.
CREATE FUNCTION offload.abort_segment(segment bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  UPDATE offload.segments SET state = 'aborted' WHERE id = segment AND state = 'pending';
$$;

REVOKE EXECUTE ON FUNCTION offload.hot_cutoff(regclass), offload.due_segments(regclass, bigint),
  offload.begin_segment(bigint, regclass, text, text, text), offload.segment_copy_statement(bigint),
  offload.commit_segment(bigint, jsonb, text, bigint), offload.abort_segment(bigint) FROM PUBLIC;

-- Points a segment table at a (possibly moved) read endpoint; a no-op when it already is.
CREATE FUNCTION offload.set_reader_program(segment_table regclass, program text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF EXISTS (SELECT FROM pg_foreign_table WHERE ftrelid = segment_table
             AND ftoptions @> ARRAY['program=' || program]) THEN
    RETURN false;
  END IF;
  EXECUTE format('ALTER FOREIGN TABLE %s OPTIONS (SET program %L)', segment_table, program);
  RETURN true;
END $$;

REVOKE EXECUTE ON FUNCTION offload.set_reader_program(regclass, text) FROM PUBLIC;
