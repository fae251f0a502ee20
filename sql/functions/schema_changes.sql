-- Schema changes on tables with offloaded data, and databases restored from a dump.
--
-- Stored rows keep the columns they were written with. Each epoch of a segment records that
-- layout by column name (offload.segment_layouts); an event trigger follows ALTER TABLE
-- (renames, drops, additions, type changes) and keeps the names current, so the read endpoint
-- can map stored fields to the segment table's columns of today. Columns are told apart by
-- attnum while the database lives, and by name across a dump and restore (which renumbers them).
-- ALTERs that read offloaded rows (NOT NULL, CHECK) read them only where the bridge can serve
-- them: it sees the columns as committed, so not in the transaction that adds or drops columns.

-- The live columns of a relation, in attnum order.
CREATE OR REPLACE FUNCTION offload.live_columns(rel regclass) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(jsonb_agg(jsonb_build_object('attnum', attnum, 'name', attname,
                                               'type', atttypid::regtype::text, 'typmod', atttypmod,
                                               'notnull', attnotnull)
                            ORDER BY attnum), '[]')
    FROM pg_attribute WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped;
$$;

CREATE OR REPLACE FUNCTION offload.remember_columns(segment bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  UPDATE offload.segments s
     SET seen_columns = offload.live_columns(s.segment_table), seen_oid = s.segment_table,
         seen_natts = (SELECT relnatts FROM pg_class WHERE oid = s.segment_table)
   WHERE s.id = segment;
$$;
REVOKE EXECUTE ON FUNCTION offload.remember_columns(segment bigint) FROM PUBLIC;

-- What the current epoch stores: the parent's columns in its order (what the copy selected), as
-- the segment table names and types them. Called in the transaction that commits the epoch,
-- which has held a lock on the table since before the copy, so no column changed in between.
CREATE OR REPLACE FUNCTION offload.record_layout(segment bigint) RETURNS void
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
REVOKE EXECUTE ON FUNCTION offload.record_layout(segment bigint) FROM PUBLIC;

-- Can values stored as (from_type, from_mod) be read as (to_type, to_mod) and mean what
-- ALTER COLUMN ... TYPE would have made of them? True only where the stored text form, read
-- by the new type's input function, gives exactly the cast's result: typmod widenings and a
-- few lossless conversions. Anything else needs the rows converted, which only load_back can do.
CREATE OR REPLACE FUNCTION offload.reads_as(from_type regtype, from_mod int, to_type regtype, to_mod int)
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

-- A value's text form in the settings the read endpoint's COPY data is written in (those of
-- offload.added_column_value). The value itself is computed by the caller, in the caller's
-- settings (a function's SET clauses apply to its body, not to its arguments).
CREATE OR REPLACE FUNCTION offload.copy_text(value anyelement) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp SET DateStyle = 'ISO, YMD' SET TimeZone = 'UTC'
SET IntervalStyle = 'postgres' SET extra_float_digits = 1 SET bytea_output = 'hex' AS $$
  SELECT value::text;
$$;

-- Did the current transaction add or change this column of the segment table?
CREATE OR REPLACE FUNCTION offload.changed_here(rel regclass, col int2) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT xmin = pg_current_xact_id()::xid FROM pg_attribute WHERE attrelid = rel AND attnum = col);

-- Is the current transaction in offload.follow_changes() of this segment table's table? Its
-- owner follows there, with its own rights, changes made earlier (no event trigger saw them).
CREATE OR REPLACE FUNCTION offload.following_changes_of(segment_table regclass) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN EXISTS (SELECT FROM offload.segments s JOIN pg_class c ON c.oid = s.table_id
                WHERE s.segment_table = following_changes_of.segment_table
                  AND s.table_id::oid::text = current_setting('pg_offload.following_changes', true)
                  AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user));

-- The value PostgreSQL recorded, when the column was added to the table, for the rows that
-- existed then (its "missing value"), in COPY text form; NULL when it recorded none.
CREATE OR REPLACE FUNCTION offload.recorded_missing_value(rel regclass, col_name name) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  a record;
  value text;
BEGIN
  SELECT attmissingval::text AS missing, format_type(atttypid, atttypmod) AS type INTO a
    FROM pg_attribute WHERE attrelid = rel AND attname = col_name AND atthasmissing;
  IF a.missing IS NULL THEN
    RETURN NULL;
  END IF;
  EXECUTE format('SELECT offload.copy_text((%L::%s[])[1])', a.missing, a.type) INTO value;
  RETURN value;
END $$;

-- Where no event trigger follows ALTER TABLE (an install by a role that may not create them: the
-- managed profile), a table changed since offload.follow_changes() last ran is refused to readers
-- of its offloaded rows: its stored fields could otherwise be read under the wrong names. NOT
-- NULL is left out: it changes no field, and follow_changes() reads the rows to check it.
CREATE OR REPLACE FUNCTION offload.refuse_unfollowed_changes(segment bigint) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s offload.segments%ROWTYPE;
  fields_of CONSTANT text := 'SELECT jsonb_agg(c - ''notnull'') FROM jsonb_array_elements($1) c';
  seen jsonb;
  live jsonb;
BEGIN
  SELECT * INTO s FROM offload.segments WHERE id = segment;
  IF s.segment_table IS NULL OR offload.follows_alters_itself() THEN
    RETURN;
  END IF;
  EXECUTE fields_of INTO seen USING s.seen_columns;
  EXECUTE fields_of INTO live USING offload.live_columns(s.segment_table);
  IF seen IS DISTINCT FROM live THEN
    RAISE EXCEPTION 'pg-offload: table % was altered since pg-offload last followed its columns (segment %)',
      s.table_id, segment
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = format('This database has no event trigger to follow ALTER TABLE: the table''s owner runs SELECT offload.follow_changes(%L) after altering it.',
                          s.table_id::text);
  END IF;
END $$;

-- The functions that evaluate a default, cast a value or read the offloaded rows for an ALTER run
-- only for what the current transaction changed: a change the event trigger did not see when it
-- was made (a column added through a parent table) is refused, not evaluated with the rights of
-- whichever later ALTER found it.
CREATE OR REPLACE FUNCTION offload.refuse_unseen_change(rel regclass, col int2) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT offload.changed_here(rel, col) AND NOT offload.following_changes_of(rel) THEN
    RAISE EXCEPTION 'pg-offload: column "%" of segment table % changed in an earlier transaction that pg-offload did not see (through a parent table?)',
      (SELECT attname FROM pg_attribute WHERE attrelid = rel AND attnum = col), rel
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Bring the offloaded rows back with offload.load_back(), then alter the table.';
  END IF;
END $$;

-- In offload.follow_changes(), after the fact: the value the table's rows that existed when the
-- column was added show (PostgreSQL's missing value of the table's column), never an evaluation
-- of its default now, which could differ (now(), a changed function).
CREATE OR REPLACE FUNCTION offload.followed_column_value(segment_table regclass, a pg_attribute, cold_rows bigint)
RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  parent regclass := (SELECT table_id FROM offload.segments s WHERE s.segment_table = followed_column_value.segment_table);
  value text := offload.recorded_missing_value(parent, a.attname);
BEGIN
  IF value IS NULL AND cold_rows > 0 AND (a.attnotnull OR a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '') THEN
    RAISE EXCEPTION 'pg-offload: the value offloaded rows of % show for new column "%" is not known: PostgreSQL recorded none when it was added (a volatile default, an identity or generated column, or a table rewritten since)',
      parent, a.attname
      USING ERRCODE = 'feature_not_supported',
            HINT = 'Drop the column and add it again without a default (offloaded rows then read NULL), or bring the rows back first with offload.load_back().';
  END IF;
  RETURN value;
END $$;

-- The value rows that existed before a column was added show for it, in COPY text form (what
-- PostgreSQL stores as the column's "missing value": its default, evaluated once). Runs as the
-- user who altered the table, since it evaluates their default expression, in the session's own
-- settings (a timestamp default of now() means the session's local time for the hot rows, so
-- for the cold ones too). Refuses columns whose value differs row by row (volatile defaults,
-- identity, generated columns).
CREATE OR REPLACE FUNCTION offload.added_column_value(segment_table regclass, col int2, cold_rows bigint)
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  a pg_attribute%ROWTYPE;
  expr pg_node_tree;
  value text;
  problem text;
BEGIN
  PERFORM offload.refuse_unseen_change(segment_table, col);
  SELECT * INTO a FROM pg_attribute WHERE attrelid = segment_table AND attnum = col;
  IF offload.following_changes_of(segment_table) THEN
    RETURN offload.followed_column_value(segment_table, a, cold_rows);
  END IF;
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
CREATE OR REPLACE FUNCTION offload.retyped_added_value(table_id regclass, segment_table regclass, col_name text, value text,
                                            old_type regtype, old_mod int, new_type regtype, new_mod int)
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  base_type text := (SELECT format('%I.%I', n.nspname, t.typname)
                       FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = new_type);
  result text;
BEGIN
  PERFORM offload.refuse_unseen_change(segment_table,
    (SELECT attnum FROM pg_attribute WHERE attrelid = segment_table AND attname = col_name));
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

CREATE OR REPLACE FUNCTION offload.check_type_change(s offload.segments, old_name text, cur jsonb)
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

-- Does any offloaded row of the segment break the condition (over the segment table's columns
-- of now)? PostgreSQL neither checks nor validates constraints on foreign tables, but it does use
-- them to skip segments at plan time, so a constraint some cold row broke would hide that row.
-- A condition on columns added after the offload only (cols: the attnums it reads) is evaluated
-- once, on the value every offloaded row shows for them. Any other is evaluated on the rows, read
-- through the bridge; which cannot be done in a transaction that added or dropped columns (the
-- bridge serves the columns as committed): refused there, with a hint.
CREATE OR REPLACE FUNCTION offload.check_cold_condition(s offload.segments, changes jsonb, condition text,
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
CREATE OR REPLACE FUNCTION offload.check_cold_rows(segment bigint, changes jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s offload.segments%ROWTYPE;
  col int2;
  col_name name;
  c record;
BEGIN
  SELECT * INTO s FROM offload.segments WHERE id = segment;
  PERFORM offload.refuse_unseen_change(s.segment_table, made_not_null.attnum::int2)
     FROM jsonb_array_elements_text(changes -> 'not_null') AS made_not_null(attnum);
  FOR col IN SELECT jsonb_array_elements_text(changes -> 'not_null')::int2 LOOP
    SELECT attname INTO col_name FROM pg_attribute WHERE attrelid = s.segment_table AND attnum = col;
    PERFORM offload.check_cold_condition(s, changes, format('%I IS NOT NULL', col_name), ARRAY[col],
                                         format('NOT NULL on column "%s"', col_name), 'not_null_violation');
  END LOOP;
  FOR c IN SELECT conname, conkey, pg_get_expr(conbin, conrelid) AS expr FROM pg_constraint
            WHERE conrelid = s.segment_table AND contype = 'c'
              AND (xmin = pg_current_xact_id()::xid OR offload.following_changes_of(s.segment_table))
              AND conname !~ format('(__offloaded_%1$s_range|_zone_%1$s)$|^offloaded_%1$s_empty$', segment) LOOP
    PERFORM offload.check_cold_condition(s, changes, c.expr, coalesce(c.conkey, '{}'),
                                         format('check constraint "%s"', c.conname), 'check_violation');
  END LOOP;
END $$;

-- Records what column_changes found, and the transaction that added or dropped columns.
-- SECURITY DEFINER to write the catalog, for the table's owner only.
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

-- Segment tables follow their table (schema, owner). regnamespace and regrole print as quoted
-- identifiers already: they go into the statement with %s.
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

CREATE OR REPLACE FUNCTION offload.on_alter_table_start() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM offload.resync_restored_segments();
END $$;
SELECT offload.install_event_trigger('offload_on_alter_table_start', 'ddl_command_start',
                                     '{ALTER TABLE,ALTER FOREIGN TABLE}', 'offload.on_alter_table_start');

CREATE OR REPLACE FUNCTION offload.on_alter_table() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM offload.follow_alters((SELECT array_agg(DISTINCT objid) FROM pg_event_trigger_ddl_commands()
                                  WHERE classid = 'pg_class'::regclass));
END $$;

-- What ALTER TABLE of these relations changed, checked against the offloaded rows and recorded
-- (by the event trigger, or by offload.follow_changes()).
CREATE OR REPLACE FUNCTION offload.follow_alters(altered oid[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  segment bigint;
  changes jsonb;
  rel regclass;
BEGIN
  FOR segment IN SELECT id FROM offload.segments
                  WHERE state = 'committed'
                    AND (table_id = ANY (altered) OR segment_table = ANY (altered)
                         OR offload.offloaded_partition(segment_table) = ANY (altered))
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
SELECT offload.install_event_trigger('offload_on_alter_table', 'ddl_command_end',
                                     '{ALTER TABLE,ALTER FOREIGN TABLE}', 'offload.on_alter_table');

-- Without the event trigger (the managed profile), the table's owner calls this after each ALTER
-- TABLE of a table with offloaded rows; readers of those rows are refused until then
-- (refuse_unfollowed_changes). As the owner only: it checks the table's CHECK constraints and NOT
-- NULL against the offloaded rows, which evaluates the owner's expressions.
CREATE OR REPLACE FUNCTION offload.follow_changes(rel regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  owner name := (SELECT relowner::regrole::name FROM pg_class WHERE oid = rel);
BEGIN
  IF owner IS DISTINCT FROM current_user THEN
    RAISE EXCEPTION 'pg-offload: offload.follow_changes(%) runs as the table''s owner %, not as %', rel, owner, current_user
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'It evaluates the table''s constraints against its offloaded rows: SET ROLE to the owner first.';
  END IF;
  PERFORM set_config('pg_offload.following_changes', rel::oid::text, true);
  PERFORM offload.follow_alters(ARRAY[rel::oid]);
  PERFORM set_config('pg_offload.following_changes', '', true);
END $$;

-- After a restore (new oids, columns renumbered), what was last seen no longer describes the
-- segment tables: take them as they are. Layout names are kept current, so reads never needed it.
CREATE OR REPLACE FUNCTION offload.resync_restored_segments() RETURNS bigint
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

-- A restored database lost what the planner was told of each segment's rows (see
-- set_planner_rows; pg_dump 18 keeps them, older ones do not): the bridge tells it again at start.
CREATE OR REPLACE FUNCTION offload.restore_row_estimates() RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  SELECT count(*) FILTER (WHERE offload.set_planner_rows(s.segment_table, s.rows))
    FROM offload.segments s JOIN pg_class c ON c.oid = s.segment_table
   WHERE s.state = 'committed' AND c.reltuples <> s.rows;
$$;
REVOKE EXECUTE ON FUNCTION offload.restore_row_estimates() FROM PUBLIC;
