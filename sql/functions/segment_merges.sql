-- Bounded segment tables (migration 022): merging the segments of a plain table read through
-- postgres_fdw, so that the planner checks a bounded number of foreign tables on every query.
-- A merge writes nothing to the store: the chunks of the merged segments are moved, in the
-- catalog, to one new segment whose foreign table covers all their key ranges. The endpoint
-- skips chunks by their own bounds, so a large segment costs a selective read nothing.

-- The most segment tables the table keeps: its policy's segment_tables, else the database's
-- default (the pg_offload.segment_tables setting, e.g. ALTER DATABASE ... SET
-- pg_offload.segment_tables = 16, as the bridge's sessions see it), else 4.
CREATE OR REPLACE FUNCTION offload.segment_table_bound(rel regclass) RETURNS int
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  setting text := nullif(current_setting('pg_offload.segment_tables', true), '');
BEGIN
  IF setting IS NOT NULL AND (setting !~ '^[0-9]{1,9}$' OR setting::int < 1) THEN
    RAISE EXCEPTION 'pg-offload: pg_offload.segment_tables must be a whole number of at least 1, got %', setting
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN coalesce((SELECT p.segment_tables FROM offload.attachments a
                     JOIN offload.policies p ON p.name = a.policy_name WHERE a.table_id = rel),
                  setting::int, 4);
END $$;
REVOKE EXECUTE ON FUNCTION offload.segment_table_bound(rel regclass) FROM PUBLIC;

-- The columns of a table as names, types and typmods, in order (attnums and NOT NULL left out).
CREATE OR REPLACE FUNCTION offload.column_shape(cols jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT coalesce(jsonb_agg(jsonb_build_object('name', c->'name', 'type', c->'type',
                                                     'typmod', c->'typmod') ORDER BY o), '[]')
          FROM jsonb_array_elements(cols) WITH ORDINALITY AS e(c, o));

-- What segments must share to be merged: what their chunks store (the layout of the current
-- epoch, the values of columns added since), how it is keyed, encoded and where it is stored.
-- NULL for a segment that must stay as it is: an offloaded partition, one read by file_fdw, or
-- one whose table is no longer its parent's child, differs from its parent's columns or changed
-- without pg-offload following it.
CREATE OR REPLACE FUNCTION offload.merge_signature(s offload.segments) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN CASE
  WHEN s.state <> 'committed' OR s.partition_name IS NOT NULL
       OR NOT offload.reads_remotely(s.segment_table)
       OR offload.table_reader(s.table_id) <> 'postgres_fdw'
       OR NOT EXISTS (SELECT FROM pg_inherits i
                       WHERE i.inhrelid = s.segment_table AND i.inhparent = s.table_id)
       OR offload.column_shape(offload.live_columns(s.segment_table))
          IS DISTINCT FROM offload.column_shape(offload.live_columns(s.table_id))
       OR offload.column_shape(s.seen_columns)
          IS DISTINCT FROM offload.column_shape(offload.live_columns(s.segment_table))
  THEN NULL
  ELSE jsonb_build_object(
    'layout', (SELECT l.fields FROM offload.segment_layouts l
                WHERE l.segment_id = s.id AND l.epoch = s.epoch),
    'added', s.added_columns, 'key', s.key_column, 'key_type', s.key_type::text,
    'encoding', s.encoding, 'store', s.store)
END;
REVOKE EXECUTE ON FUNCTION offload.merge_signature(s offload.segments) FROM PUBLIC;

-- The groups of segments to merge, each in key order, when the table has more segment tables
-- than its bound: the table's committed segments, in key order, are cut into half the bound
-- (rounded up) of runs of similar size in bytes (a run never spans segments that cannot be
-- merged), so that the next merge is half a bound's offloads away. Runs of one are left alone.
CREATE OR REPLACE FUNCTION offload.segment_merge_groups(rel regclass) RETURNS SETOF bigint[]
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  bound int := offload.segment_table_bound(rel);
  runs int := (bound + 1) / 2;
BEGIN
  -- file_fdw tables are never merged: their segments are not looked at one by one.
  IF offload.table_reader(rel) <> 'postgres_fdw'
     OR (SELECT count(*) FROM offload.segments WHERE table_id = rel AND state = 'committed') <= bound THEN
    RETURN;
  END IF;
  RETURN QUERY
  WITH ordered AS (
    SELECT s.id, offload.merge_signature(s) AS signature, greatest(s.raw_bytes, 1) AS bytes,
           row_number() OVER w AS n
      FROM offload.segments s
     WHERE s.table_id = rel AND s.state = 'committed'
    WINDOW w AS (ORDER BY offload.sortable_key(s.range_lo, s.key_type) NULLS FIRST,
                          offload.sortable_key(s.range_hi, s.key_type), s.id)
  ), placed AS (
    SELECT o.*,
           -- Where the segment's middle falls in the table's bytes: which of the runs it joins.
           floor((sum(bytes) OVER (ORDER BY n) - bytes / 2.0) * runs
                 / sum(bytes) OVER ())::int AS slot,
           -- A new stretch begins wherever the signature changes (NULL never matches).
           count(*) FILTER (WHERE o.signature IS NULL OR o.signature IS DISTINCT FROM o.previous)
             OVER (ORDER BY n) AS stretch
      FROM (SELECT ordered.*, lag(signature) OVER (ORDER BY n) AS previous FROM ordered) o
  )
  SELECT array_agg(id ORDER BY n)
    FROM placed
   WHERE signature IS NOT NULL
   GROUP BY stretch, slot
  HAVING count(*) > 1;
END $$;
REVOKE EXECUTE ON FUNCTION offload.segment_merge_groups(rel regclass) FROM PUBLIC;

-- The zone map of segments merged: each column's least minimum and greatest maximum, compared
-- as the column's type decodes them (a domain as its base type: its CHECK may call the owner's
-- code), as the text the segments recorded. A column that cannot be decoded safely is left out
-- (its CHECK only excluded segments; leaving it out never changes a result).
CREATE OR REPLACE FUNCTION offload.merged_zone_map(rel regclass, ids bigint[]) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  col text;
  typ text;
  lo text;
  hi text;
  merged jsonb := '{}';
BEGIN
  FOR col IN SELECT DISTINCT k FROM offload.segments s, jsonb_object_keys(s.zone_map) k
              WHERE s.id = ANY (ids) LOOP
    SELECT offload.decode_type(atttypid, atttypmod)
           || coalesce(' COLLATE ' || offload.qualified_collation(attcollation), '') INTO typ
      FROM pg_attribute WHERE attrelid = rel AND attname = col AND NOT attisdropped
       AND offload.decodable_type(atttypid);
    CONTINUE WHEN typ IS NULL;
    EXECUTE format('SELECT (SELECT z->>0 FROM unnest($1) z ORDER BY (z->>0)::%1$s LIMIT 1),
                           (SELECT z->>1 FROM unnest($1) z ORDER BY (z->>1)::%1$s DESC LIMIT 1)', typ)
      INTO lo, hi
      USING ARRAY(SELECT s.zone_map->col FROM offload.segments s
                   WHERE s.id = ANY (ids) AND s.zone_map ? col);
    merged := merged || jsonb_build_object(col, jsonb_build_array(lo, hi));
  END LOOP;
  RETURN merged;
END $$;
REVOKE EXECUTE ON FUNCTION offload.merged_zone_map(rel regclass, ids bigint[]) FROM PUBLIC;

-- Merges committed segments (given in key order) into one new segment: its first epoch holds
-- their current chunks, in that order, moved (not copied: an object belongs to one chunk row);
-- its foreign table replaces theirs. They are retired, merged_into it. The caller holds the
-- table's ACCESS EXCLUSIVE lock, as an offload's commit does, and for the same reason.
CREATE OR REPLACE FUNCTION offload.merge_segments(ids bigint[]) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  first offload.segments%ROWTYPE;
  merged offload.segments%ROWTYPE;
  seg_table regclass;
  old regclass;
BEGIN
  SELECT * INTO first FROM offload.segments WHERE id = ids[1];
  INSERT INTO offload.segments
    (table_id, key_column, key_type, range_lo, range_hi, columns, encoding, store, rows,
     raw_bytes, stored_bytes, zone_map, added_columns)
  SELECT first.table_id, first.key_column, first.key_type,
         (SELECT s.range_lo FROM offload.segments s WHERE s.id = ANY (ids)
           ORDER BY offload.sortable_key(s.range_lo, s.key_type) NULLS FIRST LIMIT 1),
         (SELECT s.range_hi FROM offload.segments s WHERE s.id = ANY (ids)
           ORDER BY offload.sortable_key(s.range_hi, s.key_type) DESC LIMIT 1),
         first.columns, first.encoding, first.store, sum(s.rows), sum(s.raw_bytes),
         sum(s.stored_bytes), offload.merged_zone_map(first.table_id, ids), first.added_columns
    FROM offload.segments s WHERE s.id = ANY (ids)
  RETURNING * INTO merged;

  WITH current AS (
    SELECT c.segment_id, c.epoch, c.seq,
           row_number() OVER (ORDER BY array_position(ids, c.segment_id), c.seq) AS new_seq
      FROM offload.chunks c JOIN offload.segments s ON s.id = c.segment_id AND s.epoch = c.epoch
     WHERE c.segment_id = ANY (ids)
  )
  UPDATE offload.chunks c SET segment_id = merged.id, epoch = merged.epoch, seq = current.new_seq
    FROM current
   WHERE (c.segment_id, c.epoch, c.seq) = (current.segment_id, current.epoch, current.seq);
  INSERT INTO offload.segment_layouts (segment_id, epoch, fields)
  SELECT merged.id, merged.epoch, l.fields FROM offload.segment_layouts l
   WHERE l.segment_id = first.id AND l.epoch = first.epoch;

  seg_table := offload.create_segment_table(merged, offload.segment_checks(merged, merged.rows), NULL);
  PERFORM offload.set_planner_rows(seg_table, merged.rows);
  UPDATE offload.segments SET state = 'committed', segment_table = seg_table, committed_at = now()
   WHERE id = merged.id;
  PERFORM offload.remember_columns(merged.id);

  FOR old IN UPDATE offload.segments SET state = 'retired', retired_at = now(), merged_into = merged.id
              WHERE id = ANY (ids) RETURNING segment_table LOOP
    EXECUTE format('DROP FOREIGN TABLE %s', old);
  END LOOP;
  RETURN merged.id;
END $$;
REVOKE EXECUTE ON FUNCTION offload.merge_segments(ids bigint[]) FROM PUBLIC;

-- Keeps a table within its bound of segment tables (the bridge calls it after each offload job).
-- One transaction: all its merges are made, or none. Returns how many segments were merged away.
CREATE OR REPLACE FUNCTION offload.bound_segment_tables(rel regclass) RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  ids bigint[];
  merged int := 0;
BEGIN
  IF NOT EXISTS (SELECT FROM offload.segment_merge_groups(rel)) THEN
    RETURN 0;
  END IF;
  -- A query planned before the merge and run after it would find the merged segment tables gone
  -- and miss their rows: only ACCESS EXCLUSIVE waits for it (the caller's lock_timeout bounds it).
  EXECUTE format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', rel);
  FOR ids IN SELECT * FROM offload.segment_merge_groups(rel) LOOP
    PERFORM offload.merge_segments(ids);
    merged := merged + cardinality(ids);
  END LOOP;
  RETURN merged;
END $$;
REVOKE EXECUTE ON FUNCTION offload.bound_segment_tables(rel regclass) FROM PUBLIC;
