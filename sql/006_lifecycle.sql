-- The lifecycle of offloaded data: describe, verify, load back, rewrite (delete/update cold
-- rows) and the catalog side of garbage collection.

ALTER TABLE offload.segments
  DROP CONSTRAINT segments_state_check,
  ADD CONSTRAINT segments_state_check CHECK (state IN ('pending', 'committed', 'aborted', 'retired')),
  -- When the segment stopped being readable (loaded back, table dropped, attempt abandoned):
  -- its objects are removed once the grace period has passed since then.
  ADD COLUMN retired_at timestamptz;

-- Chunks of an epoch replaced by a rewrite: kept (and readable) until the grace period passes.
ALTER TABLE offload.chunks ADD COLUMN retired_at timestamptz;

ALTER TABLE offload.jobs
  DROP CONSTRAINT jobs_kind_check,
  ADD CONSTRAINT jobs_kind_check CHECK (kind IN ('offload', 'rewrite')),
  ADD COLUMN params jsonb NOT NULL DEFAULT '{}';

-- Objects, one row per chunk of every epoch, like Yezzey's description of external storage.
CREATE FUNCTION offload.describe(table_name regclass)
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

-- Re-reads every committed segment of the table through its reader (store -> CRC32C -> size and
-- row count per chunk against the index) and reports per segment. Reads everything: slow on
-- purpose.
CREATE FUNCTION offload.verify(table_name regclass)
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

-- Marks as retired the committed segments whose segment table no longer exists (loaded back,
-- dropped with their table, dropped by hand), and forgets the policies of dropped tables.
-- SECURITY DEFINER: it runs from load_back() and from the DROP event trigger for any user, and
-- only records what the system catalog already says.
CREATE FUNCTION offload.retire_vanished_segments() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  retired bigint;
BEGIN
  UPDATE offload.segments s SET state = 'retired', retired_at = now()
   WHERE s.state = 'committed'
     AND NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = s.segment_table);
  GET DIAGNOSTICS retired = ROW_COUNT;
  DELETE FROM offload.attachments a WHERE NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = a.table_id);
  RETURN retired;
END $$;

CREATE FUNCTION offload.on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF EXISTS (SELECT FROM pg_event_trigger_dropped_objects()
              WHERE object_type IN ('table', 'foreign table')) THEN
    PERFORM offload.retire_vanished_segments();
  END IF;
END $$;

-- DROP TABLE of a table with segments drops its segment tables too (they depend on it); this
-- records it, and garbage collection removes their objects after the grace period.
CREATE EVENT TRIGGER offload_on_sql_drop ON sql_drop EXECUTE FUNCTION offload.on_sql_drop();

-- Does [lo, hi) of a segment overlap [from_key, to_key) (NULL: unbounded)? In the key's type.
CREATE FUNCTION offload.segment_overlaps(s offload.segments, from_key text, to_key text)
RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result boolean;
BEGIN
  EXECUTE format('SELECT (%1$L IS NULL OR %2$L = ''MINVALUE'' OR %2$L::%5$s < %1$L::%5$s)
                     AND (%3$L IS NULL OR %4$L::%5$s > %3$L::%5$s)',
                 to_key, s.range_lo, from_key, s.range_hi, s.key_type)
    INTO result;
  RETURN result;
END $$;

-- Brings segments back into the heap: all of them, or those overlapping [from_key, to_key).
-- One transaction under an ACCESS EXCLUSIVE lock on the table: rows are copied back and the
-- segment tables dropped together, so a crash or error at any point changes nothing. Objects
-- stay in the store until garbage collection, after the grace period. Returns the rows loaded.
CREATE FUNCTION offload.load_back(table_name regclass, from_key text DEFAULT NULL,
                                  to_key text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  rel regclass := table_name;
  s offload.segments%ROWTYPE;
  loaded bigint := 0;
  n bigint;
  triggers name[];
  trg name;
BEGIN
  IF NOT offload.owns_table(rel) THEN
    RAISE EXCEPTION 'pg-offload: must be owner of table % to load it back', rel
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  EXECUTE format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', rel);
  -- Loading back is not inserting: the table's own triggers must not see it.
  SELECT array_agg(tgname) INTO triggers FROM pg_trigger
   WHERE tgrelid = rel AND NOT tgisinternal AND tgenabled = 'O';
  FOREACH trg IN ARRAY coalesce(triggers, '{}') LOOP
    EXECUTE format('ALTER TABLE %s DISABLE TRIGGER %I', rel, trg);
  END LOOP;
  FOR s IN SELECT * FROM offload.segments WHERE table_id = rel AND state = 'committed'
            ORDER BY id LOOP
    CONTINUE WHEN NOT offload.segment_overlaps(s, from_key, to_key);
    IF s.partition_name IS NULL THEN
      EXECUTE format('INSERT INTO %s (%s) SELECT %2$s FROM %s', rel, offload.select_list(rel), s.segment_table);
      GET DIAGNOSTICS n = ROW_COUNT;
      EXECUTE format('DROP FOREIGN TABLE %s', s.segment_table);
    ELSE
      n := offload.load_back_partition(s);
    END IF;
    IF n <> s.rows THEN
      RAISE EXCEPTION 'pg-offload: segment % of % read % rows back, the index says %', s.id, rel, n, s.rows
        USING ERRCODE = 'data_corrupted';
    END IF;
    loaded := loaded + n;
  END LOOP;
  FOREACH trg IN ARRAY coalesce(triggers, '{}') LOOP
    EXECUTE format('ALTER TABLE %s ENABLE TRIGGER %I', rel, trg);
  END LOOP;
  PERFORM offload.retire_vanished_segments();
  RETURN loaded;
END $$;

-- A heap partition again, with the name and bounds the partition had before its offload.
CREATE FUNCTION offload.load_back_partition(s offload.segments) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  name_parts text[] := parse_ident(s.partition_name);
  part_name text := name_parts[array_length(name_parts, 1)];
  nsp regnamespace := (SELECT relnamespace FROM pg_class WHERE oid = s.segment_table);
  staging regclass;
  n bigint;
BEGIN
  EXECUTE format('CREATE TABLE %s.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)',
                 nsp, offload.segment_table_name(part_name, s.id) || '_back', s.table_id);
  staging := format('%s.%I', nsp, offload.segment_table_name(part_name, s.id) || '_back')::regclass;
  EXECUTE format('INSERT INTO %s (%s) SELECT %2$s FROM %s', staging, offload.select_list(s.table_id), s.segment_table);
  GET DIAGNOSTICS n = ROW_COUNT;
  EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', s.table_id, s.segment_table);
  EXECUTE format('DROP FOREIGN TABLE %s', s.segment_table);
  EXECUTE format('ALTER TABLE %s RENAME TO %I', staging, part_name);
  EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s.%I %s', s.table_id, nsp, part_name, s.partition_bound);
  RETURN n;
END $$;

-- Delete or update cold rows: validated now, in the caller's session, then done by a bridge
-- (rewrite job) that rewrites only the segments holding matching rows, as new epochs.
CREATE FUNCTION offload.queue_rewrite(rel regclass, params jsonb) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  job_id bigint;
BEGIN
  INSERT INTO offload.jobs (table_id, kind, params) VALUES (rel, 'rewrite', params)
  ON CONFLICT (table_id) WHERE state IN ('queued', 'running') DO NOTHING
  RETURNING id INTO job_id;
  IF job_id IS NULL THEN
    RAISE EXCEPTION 'pg-offload: job % is already queued or running for table %; try again when it has finished',
      (SELECT id FROM offload.jobs WHERE table_id = rel AND state IN ('queued', 'running')), rel
      USING ERRCODE = 'lock_not_available';
  END IF;
  PERFORM pg_notify('offload_jobs', job_id::text);
  RETURN job_id;
END $$;

CREATE FUNCTION offload.check_rewrite_target(rel regclass) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT offload.owns_table(rel) THEN
    RAISE EXCEPTION 'pg-offload: must be owner of table % to change its cold rows', rel
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NOT EXISTS (SELECT FROM offload.segments WHERE table_id = rel AND state = 'committed') THEN
    RAISE EXCEPTION 'pg-offload: table % has no offloaded segments', rel USING ERRCODE = 'undefined_object';
  END IF;
END $$;

-- offload.delete_cold('events', 'user_id = 42'): deletes matching cold rows. The condition is SQL
-- on the table's columns, checked now; rows where it is NULL are kept, as DELETE keeps them.
CREATE FUNCTION offload.delete_cold(table_name regclass, condition text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM offload.check_rewrite_target(table_name);
  -- Parses and type-checks the condition against the table without reading a row.
  EXECUTE format('SELECT FROM ONLY %s WHERE (%s)::boolean LIMIT 0', table_name, condition);
  RETURN offload.queue_rewrite(table_name, jsonb_build_object('delete', true, 'condition', condition));
END $$;

-- offload.update_cold('events', '{"email": "NULL", "name": "''redacted''"}', 'user_id = 42'):
-- sets columns (to SQL expressions) in matching cold rows. The key column and zone-map columns
-- cannot change: they decide which segment a row lives in.
CREATE FUNCTION offload.update_cold(table_name regclass, assignments jsonb, condition text)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  col text;
  protected name[];
BEGIN
  PERFORM offload.check_rewrite_target(table_name);
  IF jsonb_typeof(assignments) IS DISTINCT FROM 'object' OR assignments = '{}' THEN
    RAISE EXCEPTION 'pg-offload: assignments must be a JSON object of column: SQL expression'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT ARRAY[a.key_column] || p.zone_map_columns INTO protected
    FROM offload.attachments a JOIN offload.policies p ON p.name = a.policy_name WHERE a.table_id = table_name;
  IF protected IS NULL THEN
    SELECT array_agg(DISTINCT key_column) INTO protected FROM offload.segments WHERE table_id = table_name;
  END IF;
  FOR col IN SELECT jsonb_object_keys(assignments) LOOP
    IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = table_name AND attname = col
                   AND attnum > 0 AND NOT attisdropped) THEN
      RAISE EXCEPTION 'pg-offload: column "%" does not exist in table %', col, table_name
        USING ERRCODE = 'undefined_column';
    END IF;
    IF col = ANY (protected) THEN
      RAISE EXCEPTION 'pg-offload: column "%" of table % places rows in segments and cannot be updated in cold rows', col, table_name
        USING ERRCODE = 'feature_not_supported', HINT = 'Load the rows back first with offload.load_back().';
    END IF;
    IF jsonb_typeof(assignments -> col) <> 'string' THEN
      RAISE EXCEPTION 'pg-offload: the value for column "%" must be an SQL expression as a JSON string', col
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
  END LOOP;
  EXECUTE format('SELECT %s FROM ONLY %s WHERE (%s)::boolean LIMIT 0',
                 offload.rewrite_select_list(table_name, assignments, condition), table_name, condition);
  RETURN offload.queue_rewrite(table_name,
    jsonb_build_object('delete', false, 'condition', condition, 'assignments', assignments));
END $$;

-- The parent's columns in order, with assigned columns replaced where the condition holds.
CREATE FUNCTION offload.rewrite_select_list(rel regclass, assignments jsonb, condition text)
RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT string_agg(
           CASE WHEN assignments ? attname
                THEN format('CASE WHEN (%s) IS TRUE THEN (%s)::%s ELSE %I END',
                            condition, assignments ->> attname, format_type(atttypid, atttypmod), attname)
                ELSE quote_ident(attname) END,
           ', ' ORDER BY attnum)
    FROM pg_attribute WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped;
$$;

-- For the bridge: what a rewrite job does to one segment (counted first, to skip the others).
CREATE FUNCTION offload.rewrite_statements(segment bigint, params jsonb)
RETURNS TABLE (count_sql text, copy_sql text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT format('SELECT count(*) FROM %s WHERE (%s) IS TRUE', s.segment_table, params ->> 'condition'),
         CASE WHEN (params ->> 'delete')::boolean
              THEN format('COPY (SELECT %s FROM %s WHERE (%s) IS NOT TRUE) TO STDOUT',
                          offload.select_list(s.table_id), s.segment_table, params ->> 'condition')
              ELSE format('COPY (SELECT %s FROM %s) TO STDOUT',
                          offload.rewrite_select_list(s.table_id, params -> 'assignments', params ->> 'condition'),
                          s.segment_table) END
    FROM offload.segments s WHERE s.id = segment;
$$;

-- Swaps a segment to its new epoch in one transaction: records the new chunks, retires the old
-- epoch's (readable until garbage collection after the grace period) and points the segment
-- table's reader at the new epoch. Scans already running finish on the old epoch.
CREATE FUNCTION offload.swap_segment_epoch(segment bigint, new_epoch int, chunks jsonb,
                                           reader_program text, new_rows bigint)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s offload.segments%ROWTYPE;
BEGIN
  SELECT * INTO s FROM offload.segments WHERE id = segment FOR UPDATE;
  IF s.state IS DISTINCT FROM 'committed' OR new_epoch <> s.epoch + 1 THEN
    RAISE EXCEPTION 'pg-offload: segment % changed while it was rewritten (now % at epoch %)', segment, s.state, s.epoch
      USING ERRCODE = 'serialization_failure';
  END IF;
  INSERT INTO offload.chunks (segment_id, epoch, seq, object_key, rows, raw_bytes, stored_bytes, crc32c, codec)
  SELECT segment, new_epoch, c.seq, c.object_key, c.rows, c.raw_bytes, c.stored_bytes, c.crc32c, c.codec
    FROM jsonb_to_recordset(chunks) AS c(seq int, object_key text, rows bigint, raw_bytes bigint,
                                         stored_bytes bigint, crc32c bigint, codec text);
  UPDATE offload.chunks SET retired_at = now() WHERE segment_id = segment AND epoch = s.epoch;
  EXECUTE format('ALTER FOREIGN TABLE %s OPTIONS (SET program %L)', s.segment_table, reader_program);
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    UPDATE pg_class SET reltuples = new_rows, relpages = 10 WHERE oid = s.segment_table;
  END IF;
  UPDATE offload.segments
     SET epoch = new_epoch, rows = new_rows,
         raw_bytes = (SELECT coalesce(sum(c.raw_bytes), 0) FROM offload.chunks c WHERE c.segment_id = segment AND c.epoch = new_epoch),
         stored_bytes = (SELECT coalesce(sum(c.stored_bytes), 0) FROM offload.chunks c WHERE c.segment_id = segment AND c.epoch = new_epoch)
   WHERE id = segment;
END $$;

-- Garbage collection, catalog side. Abandoned attempts (pending segments whose job is no longer
-- running, or whose bridge stopped heartbeating) become aborted; vanished segments retired.
CREATE FUNCTION offload.gc_prepare(lease interval) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM offload.retire_vanished_segments();
  UPDATE offload.segments s SET state = 'aborted', retired_at = now()
   WHERE s.state = 'pending'
     AND NOT EXISTS (SELECT FROM offload.jobs j WHERE j.id = s.job_id AND j.state = 'running'
                        AND j.heartbeat_at > now() - lease);
  UPDATE offload.segments SET retired_at = coalesce(retired_at, now()) WHERE state = 'aborted';
END $$;

-- What the store may hold, per segment: which keys are live, and whether the rest of the
-- segment's objects may go (no live job on its table, past the grace period).
CREATE FUNCTION offload.gc_segments(grace interval)
RETURNS TABLE (segment_id bigint, state text, collectable boolean, live_keys text[])
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT s.id, s.state,
         CASE WHEN s.state IN ('aborted', 'retired') THEN s.retired_at <= now() - grace
              WHEN s.state = 'pending' THEN false
              -- A committed segment's unreferenced objects may be a rewrite still uploading.
              ELSE NOT EXISTS (SELECT FROM offload.jobs j WHERE j.table_id = s.table_id
                                  AND j.state IN ('queued', 'running')) END,
         CASE WHEN s.state = 'committed'
              THEN ARRAY(SELECT c.object_key FROM offload.chunks c WHERE c.segment_id = s.id
                          AND (c.retired_at IS NULL OR c.retired_at > now() - grace))
              WHEN s.state = 'pending' OR s.retired_at > now() - grace
              THEN ARRAY(SELECT c.object_key FROM offload.chunks c WHERE c.segment_id = s.id)
              ELSE '{}'::text[] END
    FROM offload.segments s;
$$;

-- After the objects are gone: forget collected segments and retired epochs.
CREATE FUNCTION offload.gc_forget(grace interval, collected_segments bigint[]) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  DELETE FROM offload.chunks c USING offload.segments s
   WHERE s.id = c.segment_id AND s.state = 'committed'
     AND c.retired_at IS NOT NULL AND c.retired_at <= now() - grace;
  DELETE FROM offload.segments
   WHERE id = ANY (collected_segments) AND state IN ('aborted', 'retired')
     AND retired_at <= now() - grace;
$$;

REVOKE EXECUTE ON FUNCTION offload.rewrite_statements(bigint, jsonb),
  offload.swap_segment_epoch(bigint, int, jsonb, text, bigint), offload.gc_prepare(interval),
  offload.gc_segments(interval), offload.gc_forget(interval, bigint[]) FROM PUBLIC;
