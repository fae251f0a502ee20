-- Schema changes (007), corrected:
-- * what last seen of a segment table's columns is recorded after every ALTER that changes
--   anything about them (NOT NULL included), so a NOT NULL is checked once, when it is set, and
--   not again at every later ALTER;
-- * ALTERs that read offloaded rows (NOT NULL, CHECK) read them only where the bridge can serve
--   them: the bridge sees the columns as committed, so in the transaction that adds or drops
--   columns the read would fail ("missing data for column"). Conditions on columns added after
--   the offload need no read at all: every offloaded row shows the same value for them;
-- * a column added after the offload keeps a value of its type when its type changes;
-- * a default is evaluated under the settings of the session that adds the column, as
--   PostgreSQL evaluates it for the hot rows;
-- * schema and owner names are quoted once (regnamespace and regrole text is already quoted).

-- The transaction that last added or dropped columns of the segment table (uncommitted while it
-- is the current one: the bridge does not see those columns yet).
ALTER TABLE offload.segments ADD COLUMN columns_changed_in xid8;

-- A value's text form in the settings the read endpoint's COPY data is written in (those of
-- offload.added_column_value). The value itself is computed by the caller, in the caller's
-- settings (a function's SET clauses apply to its body, not to its arguments).
CREATE FUNCTION offload.copy_text(value anyelement) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp SET DateStyle = 'ISO, YMD' SET TimeZone = 'UTC'
SET IntervalStyle = 'postgres' SET extra_float_digits = 1 SET bytea_output = 'hex' AS $$
  SELECT value::text;
$$;

-- As in 007, but the default is evaluated in the session's own settings (a timestamp default
-- of now() means the session's local time for the hot rows, so for the cold ones too).
CREATE OR REPLACE FUNCTION offload.added_column_value(segment_table regclass, col int2, cold_rows bigint)
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
  EXECUTE format('SELECT offload.copy_text((%s)::%s)', pg_get_expr(expr, segment_table),
                 format_type(a.atttypid, a.atttypmod)) INTO value;
  RETURN value;
END $$;

-- The value offloaded rows show for a column added after them, once ALTER COLUMN ... TYPE has
-- changed its type: what that ALTER makes of the value in the hot rows. PostgreSQL converts with
-- the assignment cast: the cast to the new type, then its length or precision applied without
-- truncating (varchar(2) refuses 'abc'). Cast to the type without its typmod (a quoted name, since
-- the grammar reads `bit` and `char` as bit(1) and char(1)), then applied the typmod the way the
-- read will: by the type's input function, through jsonb_populate_record. Runs in the session's
-- settings, as the cast of the hot rows does.
CREATE FUNCTION offload.retyped_added_value(table_id regclass, segment_table regclass, col_name text, value text,
                                            old_type regtype, old_mod int, new_type regtype, new_mod int)
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  base_type text := (SELECT format('%I.%I', n.nspname, t.typname)
                       FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = new_type);
  result text;
BEGIN
  IF value IS NULL OR offload.reads_as(old_type, old_mod, new_type, new_mod) THEN
    RETURN value;
  END IF;
  EXECUTE format('SELECT offload.copy_text((jsonb_populate_record(NULL::%s, jsonb_build_object(%L, '
                 'offload.copy_text(%L::%s::%s)))).%I)',
                 segment_table, col_name, value, format_type(old_type, old_mod), base_type, col_name)
    INTO result;
  RETURN result;
EXCEPTION WHEN data_exception OR integrity_constraint_violation THEN
  RAISE EXCEPTION 'pg-offload: cannot change column "%" of table % to %: the offloaded rows of segment table % show % for it (the column was added after they were offloaded): %',
    col_name, table_id, format_type(new_type, new_mod), segment_table, quote_literal(value), SQLERRM
    USING ERRCODE = SQLSTATE,
          HINT = 'Alter the column to a type its value fits, or bring the rows back with offload.load_back().';
END $$;

-- What one ALTER did to a segment table's columns, against what was last seen: renamed
-- ({old: new}), dropped (names), added ({name: value}, also the new value of an added column
-- whose type changed), retyped (whether any), reshaped (whether columns were added or dropped,
-- which the bridge will not see before the commit) and not_null (attnums of columns that became
-- NOT NULL, checked against the cold rows by check_cold_rows). Reads no offloaded rows: the
-- refusals that need none come before any read.
CREATE OR REPLACE FUNCTION offload.column_changes(segment bigint) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s offload.segments%ROWTYPE;
  now_cols jsonb;
  seen jsonb;
  old jsonb;
  cur jsonb;
  changes jsonb := '{"renamed": {}, "dropped": [], "added": {}, "retyped": false, "reshaped": false, "not_null": []}';
BEGIN
  SELECT * INTO s FROM offload.segments WHERE id = segment;
  now_cols := offload.live_columns(s.segment_table);
  seen := coalesce(s.seen_columns, now_cols);
  FOR old IN SELECT * FROM jsonb_array_elements(seen) LOOP
    SELECT c INTO cur FROM jsonb_array_elements(now_cols) c WHERE c -> 'attnum' = old -> 'attnum';
    IF cur IS NULL THEN
      IF old ->> 'name' = s.key_column THEN
        RAISE EXCEPTION 'pg-offload: cannot drop column "%" of table %: it places the offloaded rows of segment % in their range',
          s.key_column, s.table_id, segment
          USING ERRCODE = 'dependent_objects_still_exist',
                HINT = 'Bring the rows back first with offload.load_back().';
      END IF;
      changes := jsonb_set(changes, '{dropped}', changes -> 'dropped' || to_jsonb(old ->> 'name'));
      changes := jsonb_set(changes, '{reshaped}', 'true');
      CONTINUE;
    END IF;
    IF cur ->> 'name' <> old ->> 'name' THEN
      changes := jsonb_set(changes, ARRAY['renamed', old ->> 'name'], cur -> 'name');
    END IF;
    IF (cur -> 'notnull')::boolean AND NOT coalesce((old -> 'notnull')::boolean, false) THEN
      changes := jsonb_set(changes, '{not_null}', changes -> 'not_null' || (cur -> 'attnum'));
    END IF;
    IF (cur ->> 'type', cur -> 'typmod') IS DISTINCT FROM (old ->> 'type', old -> 'typmod') THEN
      PERFORM offload.check_type_change(s, old ->> 'name', cur);
      -- A column added after the offload that the current epoch does not store: its one value
      -- changes type as the hot rows' values do.
      IF s.added_columns ? (old ->> 'name') AND NOT EXISTS (
           SELECT FROM offload.segment_layouts l, jsonb_array_elements(l.fields) f
            WHERE l.segment_id = s.id AND l.epoch = s.epoch AND f ->> 'name' = old ->> 'name') THEN
        changes := jsonb_set(changes, ARRAY['added', cur ->> 'name'], coalesce(to_jsonb(
          offload.retyped_added_value(s.table_id, s.segment_table, cur ->> 'name', s.added_columns ->> (old ->> 'name'),
                                      (old ->> 'type')::regtype, (old ->> 'typmod')::int,
                                      (cur ->> 'type')::regtype, (cur ->> 'typmod')::int)), 'null'));
      END IF;
      changes := jsonb_set(changes, '{retyped}', 'true');
    END IF;
  END LOOP;
  FOR cur IN SELECT c FROM jsonb_array_elements(now_cols) c
              WHERE NOT EXISTS (SELECT FROM jsonb_array_elements(seen) o
                                 WHERE o -> 'attnum' = c -> 'attnum') LOOP
    changes := jsonb_set(changes, ARRAY['added', cur ->> 'name'],
      coalesce(to_jsonb(offload.added_column_value(s.segment_table, (cur ->> 'attnum')::int2, s.rows)),
               'null'));
    changes := jsonb_set(changes, '{reshaped}', 'true');
    IF (cur -> 'notnull')::boolean THEN
      changes := jsonb_set(changes, '{not_null}', changes -> 'not_null' || (cur -> 'attnum'));
    END IF;
  END LOOP;
  RETURN changes;
END $$;

-- Does any offloaded row of the segment break the condition (over the segment table's columns
-- of now)? PostgreSQL neither checks nor validates constraints on foreign tables, but it does use
-- them to skip segments at plan time, so a constraint some cold row broke would hide that row.
-- A condition on columns added after the offload only (cols: the attnums it reads) is evaluated
-- once, on the value every offloaded row shows for them. Any other is evaluated on the rows, read
-- through the bridge; which cannot be done in a transaction that added or dropped columns (the
-- bridge serves the columns as committed): refused there, with a hint.
CREATE FUNCTION offload.check_cold_condition(s offload.segments, changes jsonb, condition text,
                                             cols int2[], what text, errcode text)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  -- The value of each added column, by its name of now.
  shown jsonb := (SELECT coalesce(jsonb_object_agg(coalesce(changes -> 'renamed' ->> key, key), value), '{}')
                     FROM jsonb_each(s.added_columns)
                    WHERE NOT changes -> 'dropped' ? key) || (changes -> 'added');
  broken bigint;
BEGIN
  IF s.rows = 0 THEN
    RETURN;
  END IF;
  IF NOT EXISTS (SELECT FROM unnest(cols) c
                  WHERE NOT EXISTS (SELECT FROM pg_attribute a
                                     WHERE a.attrelid = s.segment_table AND a.attnum = c
                                       AND NOT a.attisdropped AND shown ? a.attname)) THEN
    EXECUTE format('SELECT CASE WHEN (%s) IS FALSE THEN $2 ELSE 0 END FROM jsonb_populate_record(NULL::%s, $1)',
                   condition, s.segment_table)
      INTO broken USING shown, s.rows;
  ELSIF (changes ->> 'reshaped')::boolean OR s.columns_changed_in = pg_current_xact_id() THEN
    RAISE EXCEPTION 'pg-offload: cannot check % against the offloaded rows of table % in the transaction that adds or drops columns of it',
      what, s.table_id
      USING ERRCODE = 'feature_not_supported',
            HINT = 'The bridge reads offloaded rows with the columns as committed: commit the ALTER TABLE '
                   'that adds or drops columns first, then add the constraint in a transaction of its own.';
  ELSE
    EXECUTE format('SELECT count(*) FROM %s WHERE (%s) IS FALSE', s.segment_table, condition) INTO broken;
  END IF;
  IF broken > 0 THEN
    RAISE EXCEPTION 'pg-offload: % offloaded rows of table % (segment %) violate %', broken, s.table_id, s.id, what
      USING ERRCODE = errcode,
            HINT = 'Fix or delete those rows first with offload.update_cold() or offload.delete_cold().';
  END IF;
END $$;

-- The checks an ALTER needs against the offloaded rows: columns that became NOT NULL, and CHECK
-- constraints the current transaction put on the segment table (not pg-offload's own).
CREATE FUNCTION offload.check_cold_rows(segment bigint, changes jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s offload.segments%ROWTYPE;
  col int2;
  col_name name;
  c record;
BEGIN
  SELECT * INTO s FROM offload.segments WHERE id = segment;
  FOR col IN SELECT jsonb_array_elements_text(changes -> 'not_null')::int2 LOOP
    SELECT attname INTO col_name FROM pg_attribute WHERE attrelid = s.segment_table AND attnum = col;
    PERFORM offload.check_cold_condition(s, changes, format('%I IS NOT NULL', col_name), ARRAY[col],
                                         format('NOT NULL on column "%s"', col_name), 'not_null_violation');
  END LOOP;
  FOR c IN SELECT conname, conkey, pg_get_expr(conbin, conrelid) AS expr FROM pg_constraint
            WHERE conrelid = s.segment_table AND contype = 'c' AND xmin = pg_current_xact_id()::xid
              AND conname !~ format('(__offloaded_%1$s_range|_zone_%1$s)$|^offloaded_%1$s_empty$', segment) LOOP
    PERFORM offload.check_cold_condition(s, changes, c.expr, coalesce(c.conkey, '{}'),
                                         format('check constraint "%s"', c.conname), 'check_violation');
  END LOOP;
END $$;

-- As in 007, and records the transaction that added or dropped columns.
CREATE OR REPLACE FUNCTION offload.apply_column_changes(segment bigint, changes jsonb) RETURNS void
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
         key_column = coalesce(renamed ->> key_column, key_column),
         columns_changed_in = CASE WHEN coalesce((changes ->> 'reshaped')::boolean, false)
                                   THEN pg_current_xact_id() ELSE columns_changed_in END
   WHERE id = segment;
  PERFORM offload.remember_columns(segment);
END $$;

-- Segment tables follow their table. regnamespace and regrole print as quoted identifiers
-- already: they go into the statement with %s (007 quoted them twice with %I, so a schema or
-- role whose name needs quotes was not found).
CREATE OR REPLACE FUNCTION offload.follow_table(rel regclass) RETURNS void
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
      EXECUTE format('ALTER FOREIGN TABLE %s SET SCHEMA %s', seg.seg_table, parent.relnamespace::regnamespace);
    END IF;
    IF seg.relowner <> parent.relowner THEN
      EXECUTE format('ALTER FOREIGN TABLE %s OWNER TO %s', seg.seg_table, parent.relowner::regrole);
    END IF;
    IF seg.partition_name IS NULL AND seg.relname <> offload.segment_table_name(parent.relname, seg.id) THEN
      EXECUTE format('ALTER FOREIGN TABLE %s RENAME TO %I', seg.seg_table,
                     offload.segment_table_name(parent.relname, seg.id));
    END IF;
  END LOOP;
END $$;

CREATE OR REPLACE FUNCTION offload.on_alter_table() RETURNS event_trigger
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
    PERFORM offload.check_cold_rows(segment, changes);
    -- Most ALTERs (options, triggers, constraints) change no column: nothing to record. Any that
    -- does, NOT NULL included, is recorded, so that the next ALTER compares with it.
    IF EXISTS (SELECT FROM offload.segments s
                WHERE s.id = segment
                  AND s.seen_columns IS DISTINCT FROM offload.live_columns(s.segment_table))
       OR changes -> 'added' <> '{}' THEN
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

DROP FUNCTION offload.check_new_constraints(bigint);
DROP FUNCTION offload.check_offloaded_rows(offload.segments, text, text);
