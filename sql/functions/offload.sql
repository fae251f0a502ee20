-- Offload and commit: the segment a job writes (begin, copy statement, abort) and the one
-- transaction that moves its rows from the heap to the store's chunks (commit_segment).

-- A name that says what the table is, within PostgreSQL's 63-byte identifier limit.
CREATE OR REPLACE FUNCTION offload.segment_table_name(parent name, segment bigint) RETURNS name
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

CREATE OR REPLACE FUNCTION offload.range_condition(s offload.segments) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
RETURN format('%1$I >= %2$L::%4$s AND %1$I < %3$L::%4$s', s.key_column, s.range_lo, s.range_hi, s.key_type);

-- The columns of the parent in its order: a partition may order (or have dropped) columns
-- differently, and the segment table always has the parent's layout.
CREATE OR REPLACE FUNCTION offload.select_list(rel regclass) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)
    FROM pg_attribute WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped;
$$;

-- file_fdw cannot ANALYZE a program, so the planner is told the row count we already know, with
-- 10 pages because file_fdw assumes 10 pages for a program and scales reltuples by that density.
-- PostgreSQL 18 has a function for it (pg_dump uses it too), open to whoever may MAINTAIN the
-- table; before 18 only a superuser may write pg_class, and others leave the planner its guess.
CREATE OR REPLACE FUNCTION offload.set_planner_rows(segment_table regclass, row_count bigint) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF current_setting('server_version_num')::int >= 180000 THEN
    IF NOT has_table_privilege(segment_table, 'MAINTAIN') THEN
      RETURN false;
    END IF;
    RETURN pg_restore_relation_stats(
      'schemaname', (SELECT nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE c.oid = segment_table),
      'relname', (SELECT relname::text FROM pg_class WHERE oid = segment_table),
      'relpages', 10, 'reltuples', row_count::real);
  END IF;
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    RETURN false;
  END IF;
  UPDATE pg_class SET reltuples = row_count, relpages = 10 WHERE oid = segment_table;
  RETURN true;
END $$;
REVOKE EXECUTE ON FUNCTION offload.set_planner_rows(segment_table regclass, row_count bigint) FROM PUBLIC;

-- The COPY statement that streams out exactly the rows of a pending segment.
CREATE OR REPLACE FUNCTION offload.segment_copy_statement(segment bigint) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE WHEN s.partition_name IS NULL
    THEN format('COPY (SELECT %s FROM ONLY %s WHERE %s) TO STDOUT',
                offload.select_list(s.table_id), s.table_id, offload.range_condition(s))
    ELSE format('COPY (SELECT %s FROM ONLY %s) TO STDOUT',
                offload.select_list(s.table_id), s.partition_name::regclass)
  END
    FROM offload.segments s WHERE s.id = segment;
$$;
REVOKE EXECUTE ON FUNCTION offload.segment_copy_statement(segment bigint) FROM PUBLIC;

-- A range offload holds ACCESS SHARE on the table from before its snapshot to its commit, so no
-- ALTER TABLE lands between the copy (which selects the columns) and the recorded layout.
CREATE OR REPLACE FUNCTION offload.segment_lock_statement(segment bigint) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE WHEN s.partition_name IS NULL
              THEN format('LOCK TABLE ONLY %s IN ACCESS SHARE MODE', s.table_id)
              ELSE format('LOCK TABLE ONLY %s IN SHARE MODE', s.partition_name::regclass) END
    FROM offload.segments s WHERE s.id = segment;
$$;
REVOKE EXECUTE ON FUNCTION offload.segment_lock_statement(segment bigint) FROM PUBLIC;

-- Exact min/max of the policy's zone-map columns over the segment's rows, in the copy's snapshot.
CREATE OR REPLACE FUNCTION offload.segment_zone_map(segment bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s offload.segments%ROWTYPE;
  cols name[];
  col name;
  source text;
  bounds jsonb := '{}';
  lo text;
  hi text;
BEGIN
  SELECT * INTO s FROM offload.segments WHERE id = segment;
  SELECT p.zone_map_columns INTO cols FROM offload.attachments a
    JOIN offload.policies p ON p.name = a.policy_name WHERE a.table_id = s.table_id;
  source := CASE WHEN s.partition_name IS NULL
                 THEN format('ONLY %s WHERE %s', s.table_id, offload.range_condition(s))
                 ELSE format('ONLY %s', s.partition_name::regclass) END;
  FOREACH col IN ARRAY coalesce(cols, '{}') LOOP
    EXECUTE format('SELECT min(%1$I)::text, max(%1$I)::text FROM %2$s', col, source) INTO lo, hi;
    IF lo IS NOT NULL THEN
      bounds := bounds || jsonb_build_object(col, jsonb_build_array(lo, hi));
    END IF;
  END LOOP;
  RETURN bounds;
END $$;
REVOKE EXECUTE ON FUNCTION offload.segment_zone_map(segment bigint) FROM PUBLIC;

-- Records a pending segment (committed on its own, before any upload) and returns its id.
CREATE OR REPLACE FUNCTION offload.begin_segment(job bigint, rel regclass, lo text, hi text, store text,
                                      part regclass DEFAULT NULL)
RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  INSERT INTO offload.segments
    (table_id, job_id, key_column, key_type, range_lo, range_hi, columns, encoding, store,
     partition_name, partition_bound)
  SELECT a.table_id, job, a.key_column, a.key_type, coalesce(lo, 'MINVALUE'), hi,
         (SELECT jsonb_agg(jsonb_build_object('name', attname, 'type', format_type(atttypid, atttypmod))
                           ORDER BY attnum)
            FROM pg_attribute WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped),
         pg_encoding_to_char(encoding), store,
         part::text, pg_get_expr((SELECT relpartbound FROM pg_class WHERE oid = part), part)
    FROM offload.attachments a, pg_database
   WHERE a.table_id = rel AND datname = current_database()
  RETURNING id;
$$;
REVOKE EXECUTE ON FUNCTION offload.begin_segment(job bigint, rel regclass, lo text, hi text, store text, part regclass) FROM PUBLIC;

-- Marks an attempt's pending segment as abandoned, so its objects can be collected at once.
CREATE OR REPLACE FUNCTION offload.abort_segment(segment bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  UPDATE offload.segments SET state = 'aborted' WHERE id = segment AND state = 'pending';
$$;
REVOKE EXECUTE ON FUNCTION offload.abort_segment(segment bigint) FROM PUBLIC;


-- Moving rows out is not deleting them, and the commit of a segment runs no code the table's owner
-- controls: the DELETE of the copied rows runs with session_replication_role = replica and with
-- the triggers and rules that fire even then (ALWAYS, REPLICA) disabled for it, in this transaction, under its ACCESS EXCLUSIVE lock, so that no other session ever
-- sees them disabled. (Running them as the owner is no boundary: a trigger can
-- RESET ROLE, or queue a deferred trigger that fires at COMMIT with the bridge's rights.)
-- The table's triggers and rules that fire in the given session_replication_role ({kind, name,
-- mode}): to disable for a statement that must run none of them, and to put back as they were.
CREATE OR REPLACE FUNCTION offload.user_hooks(rel regclass, replication_role text) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT coalesce(jsonb_agg(jsonb_build_object('kind', kind, 'name', name, 'mode', mode)), '[]')
          FROM (SELECT 'TRIGGER' AS kind, tgname AS name, tgenabled AS mode FROM pg_trigger
                 WHERE tgrelid = rel AND NOT tgisinternal
                UNION ALL
                SELECT 'RULE', rulename, ev_enabled FROM pg_rewrite
                 WHERE ev_class = rel AND rulename <> '_RETURN') h
         WHERE mode = 'A' OR mode = CASE replication_role WHEN 'replica' THEN 'R' ELSE 'O' END);

-- Disables (enabled = false) or puts back the hooks listed by offload.user_hooks(). Callers hold
-- ACCESS EXCLUSIVE on the table and put them back in the same transaction: no other session ever
-- sees them disabled.
CREATE OR REPLACE FUNCTION offload.set_user_hooks(rel regclass, hooks jsonb, enabled boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  h jsonb;
BEGIN
  FOR h IN SELECT jsonb_array_elements(hooks) LOOP
    EXECUTE format('ALTER TABLE ONLY %s %s %s %I', rel,
                   CASE WHEN NOT enabled THEN 'DISABLE'
                        WHEN h ->> 'mode' = 'A' THEN 'ENABLE ALWAYS'
                        WHEN h ->> 'mode' = 'R' THEN 'ENABLE REPLICA'
                        ELSE 'ENABLE' END,
                   h ->> 'kind', h ->> 'name');
  END LOOP;
END $$;

CREATE OR REPLACE FUNCTION offload.delete_moved_rows(s offload.segments) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  hooks jsonb := offload.user_hooks(s.table_id, 'replica');
  deleted bigint;
BEGIN
  PERFORM offload.set_user_hooks(s.table_id, hooks, false);
  PERFORM set_config('session_replication_role', 'replica', true);
  EXECUTE format('DELETE FROM ONLY %s WHERE %s', s.table_id, offload.range_condition(s));
  GET DIAGNOSTICS deleted = ROW_COUNT;
  PERFORM set_config('session_replication_role', 'origin', true);
  PERFORM offload.set_user_hooks(s.table_id, hooks, true);
  RETURN deleted;
END $$;
REVOKE EXECUTE ON FUNCTION offload.delete_moved_rows(s offload.segments) FROM PUBLIC;

-- The one place a job's chunk list becomes catalog rows; the commit and the swap below call it.
CREATE OR REPLACE FUNCTION offload.record_chunks(segment bigint, segment_epoch int, chunks jsonb) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  INSERT INTO offload.chunks (segment_id, epoch, seq, object_key, rows, raw_bytes, stored_bytes,
                              crc32c, codec, key_id, bounds)
  SELECT segment, segment_epoch, c.seq, c.object_key, c.rows, c.raw_bytes, c.stored_bytes, c.crc32c,
         c.codec, c.key_id, c.bounds
    FROM jsonb_to_recordset(chunks) AS c(seq int, object_key text, rows bigint, raw_bytes bigint,
                                         stored_bytes bigint, crc32c bigint, codec text, key_id text,
                                         bounds jsonb);
$$;
REVOKE EXECUTE ON FUNCTION offload.record_chunks(segment bigint, segment_epoch integer, chunks jsonb) FROM PUBLIC;

-- The CHECK constraints of a new segment table beyond its key range, as ", CONSTRAINT ..." items.
-- Zone maps: each column's exact min/max over the copied rows, so a WHERE on the column can
-- exclude the segment too. An empty segment: nothing can match it. The planner refutes
-- "col IS NULL" from any strict condition on col (it does not use a constant false), so the key
-- and zone-map columns are named.
CREATE OR REPLACE FUNCTION offload.segment_checks(s offload.segments, copied_rows bigint) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  checks text := '';
  zone record;
BEGIN
  IF copied_rows = 0 THEN
    SELECT format(', CONSTRAINT %I CHECK (%s)', 'offloaded_' || s.id || '_empty',
                  string_agg(format('%I IS NULL', c), ' AND '))
      INTO checks
      FROM unnest(ARRAY[s.key_column] || (SELECT p.zone_map_columns FROM offload.attachments a
             JOIN offload.policies p ON p.name = a.policy_name WHERE a.table_id = s.table_id)) c;
  END IF;
  FOR zone IN SELECT key, value->>0 AS lo, value->>1 AS hi FROM jsonb_each(s.zone_map) LOOP
    checks := checks || format(', CONSTRAINT %I CHECK (%I >= %L::%s AND %I <= %L::%s)',
      left(zone.key, 40) || '_zone_' || s.id, zone.key, zone.lo,
      (SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = s.table_id AND attname = zone.key),
      zone.key, zone.hi,
      (SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = s.table_id AND attname = zone.key));
  END LOOP;
  RETURN checks;
END $$;
REVOKE EXECUTE ON FUNCTION offload.segment_checks(s offload.segments, copied_rows bigint) FROM PUBLIC;

-- The partition an offloaded partition's segment table sits in: a partitioned table with the
-- name, bounds and owner of the heap partition it replaced, whose one partition is the segment
-- table (same bounds). NULL for a segment table that is itself a partition of its table (as
-- earlier releases made them) or a child of a plain table.
CREATE OR REPLACE FUNCTION offload.offloaded_partition(segment_table regclass) RETURNS regclass
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT i.inhparent::regclass FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent
   WHERE i.inhrelid = segment_table AND c.relkind = 'p' AND c.relispartition;
$$;

-- Is the partitioned table rel one that offload.create_segment_table made (its partitions are
-- all segment tables)? Such a partition is not sub-partitioning of the user's own.
CREATE OR REPLACE FUNCTION offload.is_offloaded_partition(rel regclass) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT EXISTS (SELECT FROM pg_inherits WHERE inhparent = rel)
     AND NOT EXISTS (SELECT FROM pg_inherits i
                      WHERE i.inhparent = rel
                        AND NOT EXISTS (SELECT FROM offload.segments s
                                         WHERE s.segment_table = i.inhrelid AND s.state = 'committed'));
$$;

-- Creates the segment table of a segment: a child of a plain table (its key range as a CHECK),
-- or, for a partition offload, a foreign table with the partition's bounds inside a partitioned
-- table that takes the heap partition's place, name, bounds and owner (so that tools that manage
-- partitions by name, pg_partman's retention among them, DROP TABLE or DETACH it as any other
-- partition). The heap partition is detached and renamed here; commit_segment drops it. The
-- segment table is owned by the table's owner; comments say what each is.
CREATE OR REPLACE FUNCTION offload.create_segment_table(s offload.segments, checks text,
                                                        reader_program text) RETURNS regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  parent pg_class%ROWTYPE;
  heap pg_class%ROWTYPE;
  seg_name name;
  seg_table regclass;
  holder regclass;
BEGIN
  SELECT * INTO parent FROM pg_class WHERE oid = s.table_id;
  IF s.partition_name IS NULL THEN
    seg_name := offload.segment_table_name(parent.relname, s.id);
    EXECUTE format(
      'CREATE FOREIGN TABLE %s.%I (CONSTRAINT %I CHECK (%s)%s) INHERITS (%s)
         %s',
      parent.relnamespace::regnamespace, seg_name, seg_name || '_range', offload.range_condition(s),
      checks, s.table_id, offload.segment_table_server(s, reader_program));
  ELSE
    SELECT * INTO heap FROM pg_class WHERE oid = s.partition_name::regclass;
    seg_name := offload.segment_table_name(heap.relname, s.id);
    EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', s.table_id, heap.oid::regclass);
    EXECUTE format('ALTER TABLE %s RENAME TO %I', heap.oid::regclass, 'pg_offload_heap_' || s.id);
    EXECUTE format('CREATE TABLE %s.%I PARTITION OF %s %s PARTITION BY %s',
      heap.relnamespace::regnamespace, heap.relname, s.table_id, s.partition_bound,
      pg_get_partkeydef(s.table_id));
    holder := format('%s.%I', heap.relnamespace::regnamespace, heap.relname)::regclass;
    EXECUTE format('ALTER TABLE %s OWNER TO %s', holder, heap.relowner::regrole);
    EXECUTE format(
      'CREATE FOREIGN TABLE %s.%I PARTITION OF %s %s %s
         %s',
      parent.relnamespace::regnamespace, seg_name, holder,
      CASE WHEN checks = '' THEN '' ELSE '(' || substr(checks, 3) || ')' END,
      s.partition_bound, offload.segment_table_server(s, reader_program));
    EXECUTE format('COMMENT ON TABLE %s IS %L', holder,
      format('pg-offload: partition %s of %s, offloaded as segment %s (foreign table %s.%I)',
             s.partition_name, s.table_id, s.id, parent.relnamespace::regnamespace, seg_name));
  END IF;
  seg_table := format('%s.%I', parent.relnamespace::regnamespace, seg_name)::regclass;
  EXECUTE format('ALTER FOREIGN TABLE %s OWNER TO %s', seg_table, parent.relowner::regrole);
  EXECUTE format('COMMENT ON FOREIGN TABLE %s IS %L', seg_table,
    format('pg-offload segment %s of %s: %s, read-only', s.id, s.table_id,
           coalesce('partition ' || s.partition_name || ' ' || s.partition_bound,
                    'rows with ' || offload.range_condition(s))));
  RETURN seg_table;
END $$;
REVOKE EXECUTE ON FUNCTION offload.create_segment_table(s offload.segments, checks text, reader_program text) FROM PUBLIC;

-- The one transaction of an offload (DESIGN.md decision 4). Runs in the REPEATABLE READ
-- transaction whose snapshot the COPY read: records the chunks (offload.record_chunks), creates
-- the segment table, moves the rows out of the heap (offload.delete_moved_rows) and marks the
-- segment committed, with the layout its epoch stores (offload.record_layout). Fails, leaving
-- everything as it was, unless it deletes exactly the rows that were copied.
CREATE OR REPLACE FUNCTION offload.commit_segment(segment bigint, chunks jsonb,
                                                  reader_program text, copied_rows bigint)
RETURNS regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s offload.segments%ROWTYPE;
  seg_table regclass;
  deleted bigint;
  heap regclass;
BEGIN
  SELECT * INTO s FROM offload.segments WHERE id = segment FOR UPDATE;
  IF s.state IS DISTINCT FROM 'pending' THEN
    RAISE EXCEPTION 'pg-offload: segment % is %, not pending', segment, coalesce(s.state, 'missing');
  END IF;

  -- A query planned before this commit and executed after it would miss the moved rows (its plan
  -- lacks the new segment table, its snapshot sees them deleted). Only ACCESS EXCLUSIVE waits for
  -- such queries; the caller's lock_timeout bounds the wait, and the job retries on timeout.
  EXECUTE format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', s.table_id);

  heap := s.partition_name::regclass;
  PERFORM offload.record_chunks(segment, s.epoch, chunks);
  s.zone_map := offload.segment_zone_map(segment);  -- in the copy's snapshot: this transaction's
  seg_table := offload.create_segment_table(s, offload.segment_checks(s, copied_rows), reader_program);

  PERFORM offload.set_planner_rows(seg_table, copied_rows);

  IF s.partition_name IS NULL THEN
    deleted := offload.delete_moved_rows(s);
  ELSE
    -- The partition was locked against writes before the copy: it holds exactly what was copied.
    -- By oid: create_segment_table gave its name to the partitioned table that replaced it.
    EXECUTE format('SELECT count(*) FROM ONLY %s', heap) INTO deleted;
    EXECUTE format('DROP TABLE %s', heap);
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
  PERFORM offload.record_layout(segment);
  RETURN seg_table;
END $$;
REVOKE EXECUTE ON FUNCTION offload.commit_segment(segment bigint, chunks jsonb, reader_program text, copied_rows bigint) FROM PUBLIC;
