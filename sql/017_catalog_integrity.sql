-- Two more ways a table owner's code could reach the bridge's rights, closed (SECURITY.md):
--
-- * Catalog rows written directly. Owners may INSERT into offload.attachments under row-level
--   security (offload.attach_policy, which runs as its caller, does just that), and the bridge
--   builds SQL from those rows with its own rights: a key_type naming a domain whose CHECK calls
--   the owner's function made every `'...'::key_type` cast of the bridge run that function as a
--   superuser. The table now checks its rows itself, whoever writes them.
-- * Changes the ALTER TABLE event trigger did not see when they were made (a column added through
--   a parent of the table, say). The next ALTER of the table, which may be the bridge's own
--   (repointing readers, disabling triggers for a commit), found them and evaluated the owner's
--   default or CHECK, or read the segment (a domain's CHECK), with that ALTER's rights. The event
--   trigger now evaluates only what the current transaction changed, and refuses the rest.

CREATE FUNCTION offload.check_attachment() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p offload.policies%ROWTYPE;
  col_type regtype;
  zone_col name;
BEGIN
  PERFORM offload.check_table(NEW.table_id);
  SELECT * INTO p FROM offload.policies WHERE name = NEW.policy_name;
  SELECT atttypid::regtype INTO col_type FROM pg_attribute
   WHERE attrelid = NEW.table_id AND attname = p.time_column AND attnum > 0 AND NOT attisdropped;
  IF NEW.key_column IS DISTINCT FROM p.time_column OR NEW.key_type IS DISTINCT FROM col_type
     OR NOT (offload.is_time_type(col_type) OR offload.is_integer_type(col_type))
     OR NEW.partitioned IS DISTINCT FROM (SELECT relkind = 'p' FROM pg_class WHERE oid = NEW.table_id) THEN
    RAISE EXCEPTION 'pg-offload: the attachment of table % to policy "%" does not describe the table (key column, its type, partitioning)',
      NEW.table_id, NEW.policy_name
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Attach policies with offload.attach_policy().';
  END IF;
  FOREACH zone_col IN ARRAY p.zone_map_columns LOOP
    IF NOT EXISTS (SELECT FROM pg_attribute a JOIN pg_opclass o ON o.opcintype = a.atttypid
                   JOIN pg_am m ON m.oid = o.opcmethod AND m.amname = 'btree' AND o.opcdefault
                   WHERE a.attrelid = NEW.table_id AND a.attname = zone_col AND a.attnum > 0
                     AND NOT a.attisdropped) THEN
      RAISE EXCEPTION 'pg-offload: zone-map column "%" of policy "%" is not a column of table % with an ordering',
        zone_col, NEW.policy_name, NEW.table_id
        USING ERRCODE = 'invalid_parameter_value', HINT = 'Attach policies with offload.attach_policy().';
    END IF;
  END LOOP;
  RETURN NEW;
END $$;

CREATE TRIGGER check_attachment BEFORE INSERT OR UPDATE OF table_id, policy_name, key_column, key_type, partitioned
  ON offload.attachments FOR EACH ROW EXECUTE FUNCTION offload.check_attachment();

-- Did the current transaction add or change this column of the segment table?
CREATE FUNCTION offload.changed_here(rel regclass, col int2) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT xmin = pg_current_xact_id()::xid FROM pg_attribute WHERE attrelid = rel AND attnum = col);

CREATE FUNCTION offload.refuse_unseen_change(rel regclass, col int2) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT offload.changed_here(rel, col) THEN
    RAISE EXCEPTION 'pg-offload: column "%" of segment table % changed in an earlier transaction that pg-offload did not see (through a parent table?)',
      (SELECT attname FROM pg_attribute WHERE attrelid = rel AND attnum = col), rel
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Bring the offloaded rows back with offload.load_back(), then alter the table.';
  END IF;
END $$;

-- The functions that evaluate a default, cast a value or read the offloaded rows for an ALTER run
-- only for what the current transaction changed.
ALTER FUNCTION offload.added_column_value(regclass, int2, bigint) RENAME TO added_column_value_here;
CREATE FUNCTION offload.added_column_value(segment_table regclass, col int2, cold_rows bigint) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM offload.refuse_unseen_change(segment_table, col);
  RETURN offload.added_column_value_here(segment_table, col, cold_rows);
END $$;

ALTER FUNCTION offload.retyped_added_value(regclass, regclass, text, text, regtype, int, regtype, int)
  RENAME TO retyped_added_value_here;
CREATE FUNCTION offload.retyped_added_value(table_id regclass, segment_table regclass, col_name text, value text,
                                            old_type regtype, old_mod int, new_type regtype, new_mod int)
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM offload.refuse_unseen_change(segment_table,
    (SELECT attnum FROM pg_attribute WHERE attrelid = segment_table AND attname = col_name));
  RETURN offload.retyped_added_value_here(table_id, segment_table, col_name, value, old_type, old_mod,
                                          new_type, new_mod);
END $$;

ALTER FUNCTION offload.check_cold_rows(bigint, jsonb) RENAME TO check_cold_rows_here;
CREATE FUNCTION offload.check_cold_rows(segment bigint, changes jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM offload.refuse_unseen_change(s.segment_table, c::int2)
     FROM offload.segments s, jsonb_array_elements_text(changes -> 'not_null') c
    WHERE s.id = segment;
  PERFORM offload.check_cold_rows_here(segment, changes);
END $$;

-- As in 006_lifecycle.sql, but no trigger or rule of the table fires for a load back, ALWAYS ones
-- included (they ran with the rights of whoever loaded back: the CLI's, often a superuser's).
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
