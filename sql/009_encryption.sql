-- Client-side encryption: the catalog records which key each chunk was encrypted with, so that
-- an operator rotating keys can see when an old key is no longer needed, and offload.rewrite_cold
-- re-writes a table's segments with the bridge's current key (and compression settings).

ALTER TABLE offload.chunks ADD COLUMN key_id text CHECK (key_id ~ '^[0-9a-f]{8}$');
COMMENT ON COLUMN offload.chunks.key_id IS
  'pg-offload: id of the key the chunk is encrypted with (see the README, Encryption); NULL: not encrypted';

-- The one place a job's chunk list becomes catalog rows; the commit and the swap below call it.
CREATE FUNCTION offload.record_chunks(segment bigint, segment_epoch int, chunks jsonb) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  INSERT INTO offload.chunks (segment_id, epoch, seq, object_key, rows, raw_bytes, stored_bytes,
                              crc32c, codec, key_id)
  SELECT segment, segment_epoch, c.seq, c.object_key, c.rows, c.raw_bytes, c.stored_bytes, c.crc32c,
         c.codec, c.key_id
    FROM jsonb_to_recordset(chunks) AS c(seq int, object_key text, rows bigint, raw_bytes bigint,
                                         stored_bytes bigint, crc32c bigint, codec text, key_id text);
$$;
REVOKE EXECUTE ON FUNCTION offload.record_chunks(bigint, int, jsonb) FROM PUBLIC;

-- As in 008_privileges.sql, the chunks now recorded by offload.record_chunks.
CREATE OR REPLACE FUNCTION offload.commit_segment_rows(segment bigint, chunks jsonb,
                                                       reader_program text, copied_rows bigint)
RETURNS regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s offload.segments%ROWTYPE;
  parent pg_class%ROWTYPE;
  seg_name name;
  seg_table regclass;
  deleted bigint;
  checks text;
  zone record;
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

  PERFORM offload.record_chunks(segment, s.epoch, chunks);

  -- Zone maps: each column's exact min/max over the copied rows (this is the copy's snapshot), so
  -- a WHERE on the column can exclude the segment too.
  s.zone_map := offload.segment_zone_map(segment);
  checks := '';
  IF copied_rows = 0 THEN
    -- Nothing can match an empty segment. The planner refutes "col IS NULL" from any strict
    -- condition on col (it does not use a constant false), so name the key and zone-map columns.
    SELECT format(', CONSTRAINT %I CHECK (%s)', 'offloaded_' || segment || '_empty',
                  string_agg(format('%I IS NULL', c), ' AND '))
      INTO checks
      FROM unnest(ARRAY[s.key_column] || (SELECT p.zone_map_columns FROM offload.attachments a
             JOIN offload.policies p ON p.name = a.policy_name WHERE a.table_id = s.table_id)) c;
  END IF;
  FOR zone IN SELECT key, value->>0 AS lo, value->>1 AS hi FROM jsonb_each(s.zone_map) LOOP
    checks := checks || format(', CONSTRAINT %I CHECK (%I >= %L::%s AND %I <= %L::%s)',
      left(zone.key, 40) || '_zone_' || segment, zone.key, zone.lo,
      (SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = s.table_id AND attname = zone.key),
      zone.key, zone.hi,
      (SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = s.table_id AND attname = zone.key));
  END LOOP;

  IF s.partition_name IS NULL THEN
    seg_name := offload.segment_table_name(parent.relname, segment);
    EXECUTE format(
      'CREATE FOREIGN TABLE %s.%I (CONSTRAINT %I CHECK (%s)%s) INHERITS (%s)
         SERVER pg_offload_reader OPTIONS (program %L, format ''text'', encoding %L)',
      parent.relnamespace::regnamespace, seg_name, seg_name || '_range', offload.range_condition(s),
      checks, s.table_id, reader_program, s.encoding);
  ELSE
    seg_name := offload.segment_table_name(
      (SELECT relname FROM pg_class WHERE oid = s.partition_name::regclass), segment);
    EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', s.table_id, s.partition_name::regclass);
    EXECUTE format(
      'CREATE FOREIGN TABLE %s.%I PARTITION OF %s %s %s
         SERVER pg_offload_reader OPTIONS (program %L, format ''text'', encoding %L)',
      parent.relnamespace::regnamespace, seg_name, s.table_id,
      CASE WHEN checks = '' THEN '' ELSE '(' || substr(checks, 3) || ')' END,
      s.partition_bound, reader_program, s.encoding);
  END IF;
  seg_table := format('%s.%I', parent.relnamespace::regnamespace, seg_name)::regclass;
  EXECUTE format('ALTER FOREIGN TABLE %s OWNER TO %s', seg_table, parent.relowner::regrole);
  EXECUTE format('COMMENT ON FOREIGN TABLE %s IS %L', seg_table,
    format('pg-offload segment %s of %s: %s, read-only', segment, s.table_id,
           coalesce('partition ' || s.partition_name || ' ' || s.partition_bound,
                    'rows with ' || offload.range_condition(s))));

  -- file_fdw cannot ANALYZE a program; tell the planner the row count we already know, with 10
  -- pages because file_fdw assumes 10 pages for a program and scales reltuples by that density.
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    UPDATE pg_class SET reltuples = copied_rows, relpages = 10 WHERE oid = seg_table;
  END IF;

  IF s.partition_name IS NULL THEN
    -- Moving rows is not deleting them: user triggers (audit, summaries) must not see it.
    -- As the table's owner: triggers enabled ALWAYS or REPLICA and rules on the table are the
    -- owner's code, and must not run with the bridge's superuser rights.
    PERFORM set_config('session_replication_role', 'replica', true);
    PERFORM set_config('role', (SELECT rolname FROM pg_roles WHERE oid = parent.relowner), true);
    EXECUTE format('DELETE FROM ONLY %s WHERE %s', s.table_id, offload.range_condition(s));
    GET DIAGNOSTICS deleted = ROW_COUNT;
    PERFORM set_config('role', 'none', true);
    PERFORM set_config('session_replication_role', 'origin', true);
  ELSE
    -- The partition was locked against writes before the copy: it holds exactly what was copied.
    EXECUTE format('SELECT count(*) FROM ONLY %s', s.partition_name::regclass) INTO deleted;
    EXECUTE format('DROP TABLE %s', s.partition_name::regclass);
  END IF;
  IF deleted <> copied_rows THEN
    RAISE EXCEPTION 'pg-offload: segment % of %: copied % rows but would remove %', segment, s.table_id, copied_rows, deleted
      USING ERRCODE = 'serialization_failure';
  END IF;

  UPDATE offload.segments
     SET state = 'committed', segment_table = seg_table, committed_at = now(), rows = copied_rows,
         zone_map = s.zone_map,
         raw_bytes = (SELECT coalesce(sum(c.raw_bytes), 0) FROM offload.chunks c WHERE c.segment_id = segment),
         stored_bytes = (SELECT coalesce(sum(c.stored_bytes), 0) FROM offload.chunks c WHERE c.segment_id = segment)
   WHERE id = segment;
  RETURN seg_table;
END $$;

-- As in 006_lifecycle.sql (renamed by 007), the chunks now recorded by offload.record_chunks.
CREATE OR REPLACE FUNCTION offload.swap_segment_chunks(segment bigint, new_epoch int, chunks jsonb,
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
  PERFORM offload.record_chunks(segment, new_epoch, chunks);
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


-- offload.rewrite_cold('events'): writes every cold segment of the table again, as the bridge
-- writes today: with its current encryption key, compression level and chunk size. Rows do not
-- change. After a key rotation, this (and garbage collection after the grace period) leaves no
-- chunk needing the old key.
CREATE FUNCTION offload.rewrite_cold(table_name regclass) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM offload.check_rewrite_target(table_name);
  RETURN offload.queue_rewrite(table_name,
    jsonb_build_object('delete', false, 'condition', 'true', 'assignments', '{}'::jsonb));
END $$;
