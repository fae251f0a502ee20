-- The lifecycle of offloaded data after its offload: load back (all of it, or a key range),
-- truncate, and segments retired when their table is dropped.

-- Does [lo, hi) of a segment overlap [from_key, to_key) (NULL: unbounded)? In the key's type.
CREATE OR REPLACE FUNCTION offload.segment_overlaps(s offload.segments, from_key text, to_key text)
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

-- Marks as retired the committed segments whose segment table no longer exists (loaded back,
-- dropped with their table, dropped by hand), and forgets the policies of dropped tables.
-- SECURITY DEFINER: it runs from load_back() and from the DROP event trigger for any user, and
-- only records what the system catalog already says.
CREATE OR REPLACE FUNCTION offload.retire_vanished_segments() RETURNS bigint
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

CREATE OR REPLACE FUNCTION offload.on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF EXISTS (SELECT FROM pg_event_trigger_dropped_objects()
              WHERE object_type IN ('table', 'foreign table')) THEN
    PERFORM offload.retire_vanished_segments();
  END IF;
END $$;
-- DROP TABLE of a table with segments drops its segment tables too (they depend on it); this
-- records it, and garbage collection removes their objects after the grace period.
SELECT offload.install_event_trigger('offload_on_sql_drop', 'sql_drop', NULL, 'offload.on_sql_drop');

-- Does the segment still belong to its table? A plain table's segments always do. An offloaded
-- partition does not once detached (by pg_partman's retention with retention_keep_table, or by
-- hand): the detached table keeps its segment, readable, and the table's load back, truncate and
-- rewrites leave it alone.
CREATE OR REPLACE FUNCTION offload.segment_in_its_table(s offload.segments) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT s.partition_name IS NULL
      OR EXISTS (SELECT FROM pg_inherits
                  WHERE inhrelid = coalesce(offload.offloaded_partition(s.segment_table), s.segment_table)
                    AND inhparent = s.table_id);
$$;

-- A heap partition again, with the bounds the partition had before its offload, its name and
-- schema as the offloaded partition has them now (or, for a foreign partition attached directly,
-- as earlier releases made them, the name it had before).
CREATE OR REPLACE FUNCTION offload.load_back_partition(s offload.segments, with_rows boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  holder regclass := offload.offloaded_partition(s.segment_table);
  cold regclass := coalesce(holder, s.segment_table);
  name_parts text[] := parse_ident(s.partition_name);
  part_name text := coalesce((SELECT relname FROM pg_class WHERE oid = holder),
                             name_parts[array_length(name_parts, 1)]);
  nsp regnamespace := (SELECT relnamespace FROM pg_class WHERE oid = cold);
  staging regclass;
  n bigint := 0;
BEGIN
  EXECUTE format('CREATE TABLE %s.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)',
                 nsp, offload.segment_table_name(part_name, s.id) || '_back', s.table_id);
  staging := format('%s.%I', nsp, offload.segment_table_name(part_name, s.id) || '_back')::regclass;
  IF with_rows THEN
    EXECUTE format('INSERT INTO %s (%s) SELECT %2$s FROM %s', staging, offload.select_list(s.table_id), s.segment_table);
    GET DIAGNOSTICS n = ROW_COUNT;
  END IF;
  EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', s.table_id, cold);
  IF holder IS NULL THEN
    EXECUTE format('DROP FOREIGN TABLE %s', s.segment_table);
  ELSE
    EXECUTE format('DROP TABLE %s', holder);  -- and the segment table, its partition
  END IF;
  EXECUTE format('ALTER TABLE %s RENAME TO %I', staging, part_name);
  EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s.%I %s', s.table_id, nsp, part_name, s.partition_bound);
  RETURN n;
END $$;

-- Brings segments back into the heap: all of them, or those overlapping [from_key, to_key).
-- One transaction under an ACCESS EXCLUSIVE lock on the table: rows are copied back and the
-- segment tables dropped together, so a crash or error at any point changes nothing. Objects
-- stay in the store until garbage collection, after the grace period. Returns the rows loaded.
-- No trigger or rule of the table fires for a load back, ALWAYS ones included (they would run
-- with the rights of whoever loads back: the CLI's, often a superuser's).
CREATE OR REPLACE FUNCTION offload.load_back(table_name regclass, from_key text DEFAULT NULL,
                                  to_key text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  rel regclass := table_name;
  s offload.segments%ROWTYPE;
  loaded bigint := 0;
  n bigint;
  hooks jsonb;
BEGIN
  IF NOT offload.owns_table(rel) THEN
    RAISE EXCEPTION 'pg-offload: must be owner of table % to load it back', rel
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  EXECUTE format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', rel);
  -- Loading back is not inserting: none of the table's triggers or rules fire for it.
  hooks := offload.user_hooks(rel, current_setting('session_replication_role'));
  PERFORM offload.set_user_hooks(rel, hooks, false);
  FOR s IN SELECT * FROM offload.segments WHERE table_id = rel AND state = 'committed'
            ORDER BY id LOOP
    CONTINUE WHEN NOT offload.segment_overlaps(s, from_key, to_key);
    CONTINUE WHEN NOT offload.segment_in_its_table(s);
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
  PERFORM offload.set_user_hooks(rel, hooks, true);
  PERFORM offload.retire_vanished_segments();
  RETURN loaded;
END $$;

-- TRUNCATE cannot recurse into segment tables (file_fdw cannot truncate); this empties the
-- table, hot rows and cold, in one transaction. Offloaded partitions become empty heap
-- partitions again. Objects go at the next garbage collection after the grace period.
CREATE OR REPLACE FUNCTION offload.truncate(table_name regclass) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  rel regclass := table_name;
  s offload.segments%ROWTYPE;
  cold bigint := 0;
BEGIN
  IF NOT offload.owns_table(rel) THEN
    RAISE EXCEPTION 'pg-offload: must be owner of table % to truncate it', rel
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', rel);
  FOR s IN SELECT * FROM offload.segments WHERE table_id = rel AND state = 'committed' ORDER BY id LOOP
    CONTINUE WHEN NOT offload.segment_in_its_table(s);
    IF s.partition_name IS NULL THEN
      EXECUTE format('DROP FOREIGN TABLE %s', s.segment_table);
    ELSE
      PERFORM offload.load_back_partition(s, false);
    END IF;
    cold := cold + s.rows;
  END LOOP;
  EXECUTE format('TRUNCATE %s', rel);
  PERFORM offload.retire_vanished_segments();
  RETURN cold;
END $$;
