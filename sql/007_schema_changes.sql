-- Schema changes on tables with offloaded data, and databases restored from a dump.
--
-- Stored rows keep the columns they were written with. Each epoch of a segment records that
-- layout by column name; an event trigger follows ALTER TABLE (renames, drops, additions, type
-- changes) and keeps the names current, so the read endpoint can map stored fields to the
-- segment table's columns of today. Columns are told apart by attnum while the database lives,
-- and by name across a dump and restore (which renumbers them).

-- The stored fields of one epoch, in order: {name, type, typmod} each, where name is the
-- column's current name (NULL once the column is dropped) and type and typmod what it was
-- written as.
CREATE TABLE offload.segment_layouts (
  segment_id bigint NOT NULL REFERENCES offload.segments (id) ON DELETE CASCADE,
  epoch      int NOT NULL,
  fields     jsonb NOT NULL,
  PRIMARY KEY (segment_id, epoch)
);
GRANT SELECT ON offload.segment_layouts TO PUBLIC;
COMMENT ON COLUMN offload.segments.columns IS
  'The parent''s columns when the segment began; offload.segment_layouts has what each epoch stores.';

ALTER TABLE offload.segments
  -- Columns added after the offload: name -> the value old rows show (COPY text form, or null).
  ADD COLUMN added_columns jsonb NOT NULL DEFAULT '{}',
  -- The segment table's columns as last seen ({attnum, name, type, typmod}), to tell a rename
  -- from a drop and an add; valid while the table keeps its oid and its attribute count.
  ADD COLUMN seen_columns jsonb,
  ADD COLUMN seen_oid oid,
  ADD COLUMN seen_natts int;

-- A dump restored into another database must not write under the keys of the database it was
-- dumped from (their garbage collections would delete each other's objects): each database
-- writes under its own installation id and only ever collects under that one.
ALTER TABLE offload.installation
  ADD COLUMN system_identifier numeric,
  ADD COLUMN database_oid oid,
  ADD COLUMN superseded_at timestamptz;

CREATE FUNCTION offload.current_installation() RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  here_system numeric := (pg_control_system()).system_identifier;
  here_db oid := (SELECT oid FROM pg_database WHERE datname = current_database());
  inst offload.installation%ROWTYPE;
BEGIN
  SELECT * INTO inst FROM offload.installation WHERE superseded_at IS NULL
   ORDER BY created_at DESC LIMIT 1 FOR UPDATE;
  IF inst.system_identifier IS NULL THEN
    UPDATE offload.installation SET system_identifier = here_system, database_oid = here_db
     WHERE id = inst.id;
  ELSIF (inst.system_identifier, inst.database_oid) IS DISTINCT FROM (here_system, here_db) THEN
    UPDATE offload.installation SET superseded_at = now() WHERE id = inst.id;
    INSERT INTO offload.installation (system_identifier, database_oid)
    VALUES (here_system, here_db) RETURNING * INTO inst;
  END IF;
  RETURN inst.id;
END $$;
REVOKE EXECUTE ON FUNCTION offload.current_installation() FROM PUBLIC;

-- The live columns of a relation, in attnum order.
CREATE FUNCTION offload.live_columns(rel regclass) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(jsonb_agg(jsonb_build_object('attnum', attnum, 'name', attname,
                                               'type', atttypid::regtype::text, 'typmod', atttypmod,
                                               'notnull', attnotnull)
                            ORDER BY attnum), '[]')
    FROM pg_attribute WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped;
$$;

CREATE FUNCTION offload.remember_columns(segment bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  UPDATE offload.segments s
     SET seen_columns = offload.live_columns(s.segment_table), seen_oid = s.segment_table,
         seen_natts = (SELECT relnatts FROM pg_class WHERE oid = s.segment_table)
   WHERE s.id = segment;
$$;

-- What the current epoch stores: the parent's columns in its order (what the copy selected), as
-- the segment table names and types them. Called in the transaction that commits the epoch,
-- which has held a lock on the table since before the copy, so no column changed in between.
CREATE FUNCTION offload.record_layout(segment bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  INSERT INTO offload.segment_layouts (segment_id, epoch, fields)
  SELECT s.id, s.epoch,
         coalesce(jsonb_agg(jsonb_build_object('name', c.attname, 'type', c.atttypid::regtype::text,
                                               'typmod', c.atttypmod) ORDER BY p.attnum), '[]')
    FROM offload.segments s
    JOIN pg_attribute p ON p.attrelid = s.table_id AND p.attnum > 0 AND NOT p.attisdropped
    JOIN pg_attribute c ON c.attrelid = s.segment_table AND c.attname = p.attname AND NOT c.attisdropped
   WHERE s.id = segment
   GROUP BY s.id, s.epoch
  ON CONFLICT (segment_id, epoch) DO UPDATE SET fields = EXCLUDED.fields;
  SELECT offload.remember_columns(segment);
$$;

ALTER FUNCTION offload.commit_segment(bigint, jsonb, text, bigint) RENAME TO commit_segment_rows;
CREATE FUNCTION offload.commit_segment(segment bigint, chunks jsonb, reader_program text,
                                       copied_rows bigint)
RETURNS regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  seg_table regclass := offload.commit_segment_rows(segment, chunks, reader_program, copied_rows);
BEGIN
  PERFORM offload.record_layout(segment);
  RETURN seg_table;
END $$;

ALTER FUNCTION offload.swap_segment_epoch(bigint, int, jsonb, text, bigint) RENAME TO swap_segment_chunks;
CREATE FUNCTION offload.swap_segment_epoch(segment bigint, new_epoch int, chunks jsonb,
                                           reader_program text, new_rows bigint)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM offload.swap_segment_chunks(segment, new_epoch, chunks, reader_program, new_rows);
  PERFORM offload.record_layout(segment);
END $$;

-- Segments committed before this migration: they store what their segment table has today.
SELECT offload.record_layout(id) FROM offload.segments
 WHERE state = 'committed' AND segment_table IS NOT NULL
   AND EXISTS (SELECT FROM pg_class WHERE oid = segment_table);

-- A range offload holds ACCESS SHARE on the table from before its snapshot to its commit, so no
-- ALTER TABLE lands between the copy (which selects the columns) and the recorded layout.
CREATE OR REPLACE FUNCTION offload.segment_lock_statement(segment bigint) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE WHEN s.partition_name IS NULL
              THEN format('LOCK TABLE ONLY %s IN ACCESS SHARE MODE', s.table_id)
              ELSE format('LOCK TABLE ONLY %s IN SHARE MODE', s.partition_name::regclass) END
    FROM offload.segments s WHERE s.id = segment;
$$;

-- For the read endpoint: how to build each column of the segment table from a stored row of
-- the epoch: {"fields": n, "columns": [{"field": i} or {"value": text or null}, ...]}.
-- NULL when no layout is recorded (the stored rows are then served as they are).
CREATE FUNCTION offload.segment_read_plan(segment bigint, read_epoch int) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT jsonb_build_object(
           'fields', jsonb_array_length(l.fields),
           'columns', (SELECT coalesce(jsonb_agg(
                          CASE WHEN f.ord IS NOT NULL THEN jsonb_build_object('field', f.ord - 1)
                               ELSE jsonb_build_object('value', s.added_columns -> a.attname) END
                          ORDER BY a.attnum), '[]')
                         FROM pg_attribute a
                         LEFT JOIN LATERAL (SELECT e.ord FROM jsonb_array_elements(l.fields)
                                              WITH ORDINALITY AS e(field, ord)
                                             WHERE e.field ->> 'name' = a.attname) f ON true
                        WHERE a.attrelid = s.segment_table AND a.attnum > 0 AND NOT a.attisdropped))
    FROM offload.segments s
    JOIN offload.segment_layouts l ON l.segment_id = s.id AND l.epoch = read_epoch
   WHERE s.id = segment;
$$;

-- Can values stored as (from_type, from_mod) be read as (to_type, to_mod) and mean what
-- ALTER COLUMN ... TYPE would have made of them? True only where the stored text form, read
-- by the new type's input function, gives exactly the cast's result: typmod widenings and a
-- few lossless conversions. Anything else needs the rows converted, which only load_back can do.
CREATE FUNCTION offload.reads_as(from_type regtype, from_mod int, to_type regtype, to_mod int)
RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE
    WHEN from_type = to_type THEN
      from_mod = to_mod OR to_mod = -1 OR (from_mod <> -1 AND CASE
        WHEN from_type IN ('varchar'::regtype, 'bpchar', 'varbit', 'timestamp', 'timestamptz', 'time', 'timetz')
          THEN to_mod >= from_mod
        WHEN from_type = 'numeric'::regtype
          -- typmod - 4 = precision << 16 | scale: no fewer digits on either side of the point.
          THEN ((to_mod - 4) & 65535) >= ((from_mod - 4) & 65535)
           AND ((to_mod - 4) >> 16) - ((to_mod - 4) & 65535) >= ((from_mod - 4) >> 16) - ((from_mod - 4) & 65535)
        ELSE false END)
    WHEN to_mod <> -1 THEN false
    ELSE format('%s -> %s', from_type, to_type) IN (
      'smallint -> integer', 'smallint -> bigint', 'integer -> bigint',
      'smallint -> numeric', 'integer -> numeric', 'bigint -> numeric',
      'character varying -> text', 'text -> character varying', 'json -> jsonb')
  END;
$$;

-- The value rows that existed before a column was added show for it, in COPY text form (what
-- PostgreSQL stores as the column's "missing value": its default, evaluated once). Runs as the
-- user who altered the table, since it evaluates their default expression. Refuses columns
-- whose value differs row by row (volatile defaults, identity, generated columns).
CREATE FUNCTION offload.added_column_value(segment_table regclass, col int2, cold_rows bigint)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp SET DateStyle = 'ISO, YMD' SET TimeZone = 'UTC'
SET IntervalStyle = 'postgres' SET extra_float_digits = 1 SET bytea_output = 'hex' AS $$
DECLARE
  a pg_attribute%ROWTYPE;
  expr pg_node_tree;
  value text;
  problem text;
BEGIN
  SELECT * INTO a FROM pg_attribute WHERE attrelid = segment_table AND attnum = col;
  SELECT adbin INTO expr FROM pg_attrdef WHERE adrelid = segment_table AND adnum = col;
  IF expr IS NULL THEN
    SELECT typdefaultbin INTO expr FROM pg_type WHERE oid = a.atttypid AND typtype = 'd';
  END IF;
  problem := CASE
    WHEN a.attidentity <> '' THEN 'an identity column numbers every row'
    WHEN a.attgenerated <> '' THEN 'a generated column is computed from every row'
    WHEN EXISTS (SELECT FROM regexp_matches(expr::text, ':(?:funcid|opfuncid) (\d+)', 'g') m
                   JOIN pg_proc p ON p.oid = m[1]::oid WHERE p.provolatile = 'v')
      THEN 'its default is volatile, so every row would get its own value' END;
  IF problem IS NOT NULL AND cold_rows > 0 THEN
    RAISE EXCEPTION 'pg-offload: cannot add column "%" to a table with offloaded rows: %', a.attname, problem
      USING ERRCODE = 'feature_not_supported',
            HINT = 'Add the column without a default (offloaded rows then read NULL), set the default '
                   'afterwards, and fill offloaded rows with offload.update_cold(); or bring them '
                   'back first with offload.load_back().';
  END IF;
  IF expr IS NULL AND a.attnotnull AND cold_rows > 0 THEN
    RAISE EXCEPTION 'pg-offload: column "%" contains null values in % offloaded rows', a.attname, cold_rows
      USING ERRCODE = 'not_null_violation', HINT = 'Give the column a default.';
  END IF;
  IF expr IS NULL OR problem IS NOT NULL THEN
    RETURN NULL;
  END IF;
  EXECUTE format('SELECT (%s)::%s::text', pg_get_expr(expr, segment_table),
                 format_type(a.atttypid, a.atttypmod)) INTO value;
  RETURN value;
END $$;

-- What one ALTER did to a segment table's columns, against what was last seen: renamed
-- ({old: new}), dropped (names), added ({name: value}) and retyped (whether any) columns.
-- Refuses what cold rows cannot follow: dropping or retyping the offload key, type changes the
-- stored text cannot take. (ALTER COLUMN ... TYPE ... USING never gets here: PostgreSQL refuses
-- USING on a table with foreign children or partitions, the segment tables.)
CREATE FUNCTION offload.column_changes(segment bigint) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s offload.segments%ROWTYPE;
  now_cols jsonb;
  old jsonb;
  cur jsonb;
  changes jsonb := '{"renamed": {}, "dropped": [], "added": {}, "retyped": false}';
BEGIN
  SELECT * INTO s FROM offload.segments WHERE id = segment;
  now_cols := offload.live_columns(s.segment_table);
  FOR old IN SELECT * FROM jsonb_array_elements(coalesce(s.seen_columns, now_cols)) LOOP
    SELECT c INTO cur FROM jsonb_array_elements(now_cols) c WHERE c -> 'attnum' = old -> 'attnum';
    IF cur IS NULL THEN
      IF old ->> 'name' = s.key_column THEN
        RAISE EXCEPTION 'pg-offload: cannot drop column "%" of table %: it places the offloaded rows of segment % in their range',
          s.key_column, s.table_id, segment
          USING ERRCODE = 'dependent_objects_still_exist',
                HINT = 'Bring the rows back first with offload.load_back().';
      END IF;
      changes := jsonb_set(changes, '{dropped}', changes -> 'dropped' || to_jsonb(old ->> 'name'));
      CONTINUE;
    END IF;
    IF cur ->> 'name' <> old ->> 'name' THEN
      changes := jsonb_set(changes, ARRAY['renamed', old ->> 'name'], cur -> 'name');
    END IF;
    IF (cur -> 'notnull')::boolean AND NOT coalesce((old -> 'notnull')::boolean, false) THEN
      PERFORM offload.check_offloaded_rows(s, format('%I IS NOT NULL', cur ->> 'name'),
                                           format('NOT NULL on column "%s"', cur ->> 'name'));
    END IF;
    IF (cur ->> 'type', cur -> 'typmod') IS DISTINCT FROM (old ->> 'type', old -> 'typmod') THEN
      PERFORM offload.check_type_change(s, old ->> 'name', cur);
      changes := jsonb_set(changes, '{retyped}', 'true');
    END IF;
  END LOOP;
  FOR cur IN SELECT c FROM jsonb_array_elements(now_cols) c
              WHERE NOT EXISTS (SELECT FROM jsonb_array_elements(coalesce(s.seen_columns, now_cols)) o
                                 WHERE o -> 'attnum' = c -> 'attnum') LOOP
    changes := jsonb_set(changes, ARRAY['added', cur ->> 'name'],
      coalesce(to_jsonb(offload.added_column_value(s.segment_table, (cur ->> 'attnum')::int2, s.rows)),
               'null'));
  END LOOP;
  RETURN changes;
END $$;

CREATE FUNCTION offload.check_type_change(s offload.segments, old_name text, cur jsonb)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  stored jsonb;
BEGIN
  IF old_name = s.key_column AND s.rows > 0 THEN
    RAISE EXCEPTION 'pg-offload: cannot change the type of column "%" of table %: it places the offloaded rows in their segments',
      old_name, s.table_id
      USING ERRCODE = 'feature_not_supported', HINT = 'Bring the rows back first with offload.load_back().';
  END IF;
  FOR stored IN SELECT f FROM offload.segment_layouts l, jsonb_array_elements(l.fields) f
                 WHERE l.segment_id = s.id AND f ->> 'name' = old_name LOOP
    CONTINUE WHEN s.rows = 0 OR offload.reads_as((stored ->> 'type')::regtype, (stored ->> 'typmod')::int,
                                                 (cur ->> 'type')::regtype, (cur ->> 'typmod')::int);
    RAISE EXCEPTION 'pg-offload: cannot change column "%" of table % from % to % while rows are offloaded (segment %): their stored values would need converting',
      old_name, s.table_id, format_type((stored ->> 'type')::regtype, (stored ->> 'typmod')::int),
      format_type((cur ->> 'type')::regtype, (cur ->> 'typmod')::int), s.id
      USING ERRCODE = 'feature_not_supported',
            HINT = 'Offloaded rows follow typmod widenings (varchar(n), numeric(p,s)), integer widening, '
                   'integer to numeric, varchar/text and json to jsonb. For other changes bring the rows '
                   'back with offload.load_back(), alter the table, and offload again.';
  END LOOP;
END $$;

-- PostgreSQL neither checks nor validates constraints on foreign tables, but it does use them to
-- skip segments at plan time: a CHECK or NOT NULL added to the table while some cold row breaks it
-- would hide that row from queries. So cold rows are checked here, the way PostgreSQL checks the
-- heap when the constraint is added: by reading them (through the bridge).
CREATE FUNCTION offload.check_offloaded_rows(s offload.segments, condition text, what text)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  broken bigint;
BEGIN
  IF s.rows = 0 THEN
    RETURN;
  END IF;
  EXECUTE format('SELECT count(*) FROM %s WHERE (%s) IS FALSE', s.segment_table, condition) INTO broken;
  IF broken > 0 THEN
    RAISE EXCEPTION 'pg-offload: % offloaded rows of table % (segment %) violate %', broken, s.table_id, s.id, what
      USING ERRCODE = 'check_violation',
            HINT = 'Fix or delete those rows first with offload.update_cold() or offload.delete_cold().';
  END IF;
END $$;

-- CHECK constraints the current transaction put on a segment table (not pg-offload's own).
CREATE FUNCTION offload.check_new_constraints(segment bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s offload.segments%ROWTYPE;
  c record;
BEGIN
  SELECT * INTO s FROM offload.segments WHERE id = segment;
  FOR c IN SELECT conname, pg_get_expr(conbin, conrelid) AS expr FROM pg_constraint
            WHERE conrelid = s.segment_table AND contype = 'c' AND xmin = pg_current_xact_id()::xid
              AND conname !~ format('(__offloaded_%1$s_range|_zone_%1$s)$|^offloaded_%1$s_empty$', segment) LOOP
    PERFORM offload.check_offloaded_rows(s, c.expr, format('check constraint "%s"', c.conname));
  END LOOP;
END $$;

-- Records what column_changes found. SECURITY DEFINER to write the catalog, for the table's
-- owner only.
CREATE FUNCTION offload.apply_column_changes(segment bigint, changes jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s offload.segments%ROWTYPE;
  renamed jsonb := changes -> 'renamed';
BEGIN
  SELECT * INTO s FROM offload.segments WHERE id = segment FOR UPDATE;
  IF NOT offload.owns_table(s.table_id) THEN
    RAISE EXCEPTION 'pg-offload: must be owner of table % to record its column changes', s.table_id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  UPDATE offload.segment_layouts l
     SET fields = (SELECT jsonb_agg(CASE
                     WHEN changes -> 'dropped' ? (f ->> 'name') THEN jsonb_set(f, '{name}', 'null')
                     WHEN renamed ? (f ->> 'name') THEN jsonb_set(f, '{name}', renamed -> (f ->> 'name'))
                     ELSE f END ORDER BY ord)
                     FROM jsonb_array_elements(l.fields) WITH ORDINALITY AS e(f, ord))
   WHERE l.segment_id = segment AND jsonb_array_length(l.fields) > 0;
  UPDATE offload.segments
     SET added_columns = (SELECT coalesce(jsonb_object_agg(coalesce(renamed ->> key, key), value), '{}')
                            FROM jsonb_each(added_columns)
                           WHERE NOT changes -> 'dropped' ? key) || (changes -> 'added'),
         key_column = coalesce(renamed ->> key_column, key_column)
   WHERE id = segment;
  PERFORM offload.remember_columns(segment);
END $$;

-- After a restore (new oids, columns renumbered), what was last seen no longer describes the
-- segment tables: take them as they are. Layout names are kept current, so reads never needed it.
CREATE FUNCTION offload.resync_restored_segments() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n bigint;
BEGIN
  -- Attribute counts only grow while a table lives; a smaller one means a new table.
  PERFORM offload.remember_columns(s.id)
     FROM offload.segments s JOIN pg_class c ON c.oid = s.segment_table
    WHERE s.state = 'committed'
      AND (s.seen_oid IS DISTINCT FROM c.oid OR s.seen_natts > c.relnatts);
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;

-- A policy attached to a table names columns (time, zone maps): they must stay as named.
CREATE FUNCTION offload.check_policy_columns(rel regclass) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  a offload.attachments%ROWTYPE;
  missing text;
BEGIN
  SELECT * INTO a FROM offload.attachments WHERE table_id = rel;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  SELECT c INTO missing
    FROM unnest(ARRAY[a.key_column::text] || (SELECT p.zone_map_columns::text[] FROM offload.policies p
                                               WHERE p.name = a.policy_name)) c
   WHERE NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = rel AND attname = c AND attnum > 0
                      AND NOT attisdropped AND (c <> a.key_column OR atttypid = a.key_type))
   LIMIT 1;
  IF missing IS NOT NULL THEN
    RAISE EXCEPTION 'pg-offload: column "%" of table % is named by policy "%" attached to it and cannot be dropped, renamed or retyped',
      missing, rel, a.policy_name
      USING ERRCODE = 'dependent_objects_still_exist',
            HINT = 'Detach the policy first with offload.detach_policy(), alter the table, then attach a policy that names its columns as they are.';
  END IF;
END $$;

-- Segment tables follow their table when it is renamed, moved to another schema or given to
-- another owner (PostgreSQL moves none of these along with an inheritance parent).
CREATE FUNCTION offload.follow_table(rel regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  parent pg_class%ROWTYPE;
  seg record;
BEGIN
  SELECT * INTO parent FROM pg_class WHERE oid = rel;
  FOR seg IN SELECT s.id, s.partition_name, c.oid::regclass AS seg_table, c.relname, c.relnamespace, c.relowner
               FROM offload.segments s JOIN pg_class c ON c.oid = s.segment_table
              WHERE s.table_id = rel AND s.state = 'committed' ORDER BY s.id LOOP
    IF seg.relnamespace <> parent.relnamespace THEN
      EXECUTE format('ALTER FOREIGN TABLE %s SET SCHEMA %I', seg.seg_table, parent.relnamespace::regnamespace);
    END IF;
    IF seg.relowner <> parent.relowner THEN
      EXECUTE format('ALTER FOREIGN TABLE %s OWNER TO %I', seg.seg_table, parent.relowner::regrole);
    END IF;
    IF seg.partition_name IS NULL AND seg.relname <> offload.segment_table_name(parent.relname, seg.id) THEN
      EXECUTE format('ALTER FOREIGN TABLE %s RENAME TO %I', seg.seg_table,
                     offload.segment_table_name(parent.relname, seg.id));
    END IF;
  END LOOP;
END $$;

CREATE FUNCTION offload.on_alter_table() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  altered oid[];
  segment bigint;
  changes jsonb;
  rel regclass;
BEGIN
  SELECT array_agg(DISTINCT objid) INTO altered FROM pg_event_trigger_ddl_commands()
   WHERE classid = 'pg_class'::regclass;
  FOR segment IN SELECT id FROM offload.segments
                  WHERE state = 'committed' AND (table_id = ANY (altered) OR segment_table = ANY (altered))
                    AND EXISTS (SELECT FROM pg_class WHERE oid = segment_table) ORDER BY id LOOP
    changes := offload.column_changes(segment);
    PERFORM offload.check_new_constraints(segment);
    -- Most ALTERs (options, triggers, constraints) change no column: nothing to record.
    IF changes <> '{"renamed": {}, "dropped": [], "added": {}, "retyped": false}' THEN
      PERFORM offload.apply_column_changes(segment, changes);
    END IF;
  END LOOP;
  FOR rel IN SELECT table_id FROM offload.attachments WHERE table_id = ANY (altered) LOOP
    PERFORM offload.check_policy_columns(rel);
  END LOOP;
  FOR rel IN SELECT DISTINCT table_id FROM offload.segments
              WHERE state = 'committed' AND table_id = ANY (altered) LOOP
    PERFORM offload.follow_table(rel);
  END LOOP;
END $$;

CREATE FUNCTION offload.on_alter_table_start() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM offload.resync_restored_segments();
END $$;

CREATE EVENT TRIGGER offload_on_alter_table_start ON ddl_command_start
  WHEN TAG IN ('ALTER TABLE', 'ALTER FOREIGN TABLE') EXECUTE FUNCTION offload.on_alter_table_start();
CREATE EVENT TRIGGER offload_on_alter_table ON ddl_command_end
  WHEN TAG IN ('ALTER TABLE', 'ALTER FOREIGN TABLE') EXECUTE FUNCTION offload.on_alter_table();

-- Record what the segment tables look like now, so the first ALTER has something to compare.
SELECT offload.remember_columns(id) FROM offload.segments
 WHERE state = 'committed' AND EXISTS (SELECT FROM pg_class WHERE oid = segment_table);

-- TRUNCATE cannot recurse into segment tables (file_fdw cannot truncate); this empties the
-- table, hot rows and cold, in one transaction. Offloaded partitions become empty heap
-- partitions again. Objects go at the next garbage collection after the grace period.
CREATE FUNCTION offload.truncate(table_name regclass) RETURNS bigint
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

-- load_back_partition, now also able to put back an empty partition (for truncate).
DROP FUNCTION offload.load_back_partition(offload.segments);
CREATE FUNCTION offload.load_back_partition(s offload.segments, with_rows boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  name_parts text[] := parse_ident(s.partition_name);
  part_name text := name_parts[array_length(name_parts, 1)];
  nsp regnamespace := (SELECT relnamespace FROM pg_class WHERE oid = s.segment_table);
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
  EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', s.table_id, s.segment_table);
  EXECUTE format('DROP FOREIGN TABLE %s', s.segment_table);
  EXECUTE format('ALTER TABLE %s RENAME TO %I', staging, part_name);
  EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s.%I %s', s.table_id, nsp, part_name, s.partition_bound);
  RETURN n;
END $$;

-- A restored database lost what the planner was told of each segment's rows (see
-- commit_segment): the bridge tells it again at start. Superusers only, as there.
CREATE FUNCTION offload.restore_row_estimates() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n bigint := 0;
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    UPDATE pg_class c SET reltuples = s.rows, relpages = 10
      FROM offload.segments s
     WHERE c.oid = s.segment_table AND s.state = 'committed' AND c.reltuples <> s.rows;
    GET DIAGNOSTICS n = ROW_COUNT;
  END IF;
  RETURN n;
END $$;

-- Epochs whose chunks garbage collection has forgotten need no layout either.
CREATE OR REPLACE FUNCTION offload.gc_forget(grace interval, collected_segments bigint[]) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  DELETE FROM offload.chunks c USING offload.segments s
   WHERE s.id = c.segment_id AND s.state = 'committed'
     AND c.retired_at IS NOT NULL AND c.retired_at <= now() - grace;
  DELETE FROM offload.segments
   WHERE id = ANY (collected_segments) AND state IN ('aborted', 'retired')
     AND retired_at <= now() - grace;
  DELETE FROM offload.segment_layouts l USING offload.segments s
   WHERE s.id = l.segment_id AND l.epoch <> s.epoch
     AND NOT EXISTS (SELECT FROM offload.chunks c WHERE c.segment_id = l.segment_id AND c.epoch = l.epoch);
$$;

REVOKE EXECUTE ON FUNCTION offload.commit_segment(bigint, jsonb, text, bigint),
  offload.commit_segment_rows(bigint, jsonb, text, bigint),
  offload.swap_segment_epoch(bigint, int, jsonb, text, bigint),
  offload.swap_segment_chunks(bigint, int, jsonb, text, bigint),
  offload.record_layout(bigint), offload.remember_columns(bigint),
  offload.restore_row_estimates() FROM PUBLIC;

-- A rewrite now runs in one transaction that first takes lock_sql, so that the columns its copy
-- selects are still the columns when the swap records the new epoch's layout (columns change
-- through the parent: PostgreSQL refuses to drop, rename or retype an inherited column alone).
DROP FUNCTION offload.rewrite_statements(bigint, jsonb);
CREATE FUNCTION offload.rewrite_statements(segment bigint, params jsonb)
RETURNS TABLE (lock_sql text, count_sql text, copy_sql text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT format('LOCK TABLE ONLY %s IN ACCESS SHARE MODE', s.table_id),
         format('SELECT count(*) FROM %s WHERE (%s) IS TRUE', s.segment_table, params ->> 'condition'),
         CASE WHEN (params ->> 'delete')::boolean
              THEN format('COPY (SELECT %s FROM %s WHERE (%s) IS NOT TRUE) TO STDOUT',
                          offload.select_list(s.table_id), s.segment_table, params ->> 'condition')
              ELSE format('COPY (SELECT %s FROM %s) TO STDOUT',
                          offload.rewrite_select_list(s.table_id, params -> 'assignments', params ->> 'condition'),
                          s.segment_table) END
    FROM offload.segments s WHERE s.id = segment;
$$;
REVOKE EXECUTE ON FUNCTION offload.rewrite_statements(bigint, jsonb) FROM PUBLIC;
