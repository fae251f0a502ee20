-- Policies: define, attach and detach them (checked at the call), and the policy engine that
-- says what is due on a table now (hot_cutoff, due_segments, due_partitions, plan_offload) and
-- when (is_due, for the schedule), with offload.preview() to see it.

CREATE OR REPLACE FUNCTION offload.is_integer_type(t regtype) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
RETURN t IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype);

-- The key types that can bound a segment's range with a CHECK constraint.
CREATE OR REPLACE FUNCTION offload.is_time_type(t regtype) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
RETURN t IN ('timestamp'::regtype, 'timestamptz'::regtype, 'date'::regtype);

-- A number that orders key values of any supported key type (for sorting partitions by bound).
CREATE OR REPLACE FUNCTION offload.sortable_key(k text, key_type regtype) RETURNS numeric
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN k IS NULL OR k = 'MINVALUE' THEN NULL
            WHEN offload.is_integer_type(key_type) THEN k::numeric
            ELSE extract(epoch FROM k::timestamptz) END;

CREATE OR REPLACE FUNCTION offload.define_policy(
  name text,
  time_column text,
  older_than interval DEFAULT NULL,
  keep_last bigint DEFAULT NULL,
  idle_for interval DEFAULT NULL,
  keep_hot_bytes bigint DEFAULT NULL,
  zone_map_columns text[] DEFAULT '{}',
  segment_bytes bigint DEFAULT NULL,
  chunk_bytes bigint DEFAULT NULL,
  compression_level int DEFAULT NULL,
  reader text DEFAULT NULL,
  segment_tables int DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF name IS NULL OR name = '' THEN
    RAISE EXCEPTION 'pg-offload: a policy needs a name' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF time_column IS NULL OR time_column = '' THEN
    RAISE EXCEPTION 'pg-offload: policy "%" needs time_column', name
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF num_nonnulls(older_than, keep_last, idle_for, keep_hot_bytes) <> 1 THEN
    RAISE EXCEPTION 'pg-offload: policy "%" needs exactly one of older_than (for time and date columns), keep_last (for integer columns), idle_for or keep_hot_bytes', name
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF older_than IS NOT NULL AND NOT older_than > interval '0' THEN
    RAISE EXCEPTION 'pg-offload: older_than must be a positive interval, got %', older_than
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF idle_for IS NOT NULL AND NOT idle_for > interval '0' THEN
    RAISE EXCEPTION 'pg-offload: idle_for must be a positive interval, got %', idle_for
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF keep_last IS NOT NULL AND keep_last <= 0 THEN
    RAISE EXCEPTION 'pg-offload: keep_last must be positive, got %', keep_last
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF keep_hot_bytes IS NOT NULL AND keep_hot_bytes < 0 THEN
    RAISE EXCEPTION 'pg-offload: keep_hot_bytes must be zero or more, got %', keep_hot_bytes
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF segment_bytes IS NOT NULL AND segment_bytes < 65536 THEN
    RAISE EXCEPTION 'pg-offload: segment_bytes must be at least 65536 (64 kB), got %', segment_bytes
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF chunk_bytes IS NOT NULL AND chunk_bytes NOT BETWEEN 4096 AND 268435456 THEN
    RAISE EXCEPTION 'pg-offload: chunk_bytes must be between 4096 (4 kB) and 268435456 (256 MB), got %', chunk_bytes
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF compression_level IS NOT NULL AND compression_level NOT BETWEEN 0 AND 22 THEN
    RAISE EXCEPTION 'pg-offload: compression_level must be between 0 (none) and 22 (zstd maximum), got %', compression_level
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF reader NOT IN ('file_fdw', 'postgres_fdw') THEN
    RAISE EXCEPTION 'pg-offload: reader must be file_fdw or postgres_fdw, got %', reader
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF reader = 'postgres_fdw' AND NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'postgres_fdw') THEN
    RAISE EXCEPTION 'pg-offload: reader postgres_fdw needs the postgres_fdw extension, which this database lacks'
      USING ERRCODE = 'feature_not_supported',
            HINT = 'Install PostgreSQL''s contrib modules and run CREATE EXTENSION postgres_fdw as a superuser, or use reader => ''file_fdw''.';
  END IF;
  IF reader = 'file_fdw' AND NOT EXISTS (SELECT FROM pg_foreign_server WHERE srvname = 'pg_offload_reader') THEN
    RAISE EXCEPTION 'pg-offload: reader file_fdw needs file_fdw, which this database lacks (it was installed by a role that is not a superuser)'
      USING ERRCODE = 'feature_not_supported',
            HINT = 'Use reader => ''postgres_fdw'' (the default here), or have a superuser run pg-offload install.';
  END IF;
  IF segment_tables IS NOT NULL AND segment_tables < 1 THEN
    RAISE EXCEPTION 'pg-offload: segment_tables must be at least 1, got %', segment_tables
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF EXISTS (SELECT FROM unnest(zone_map_columns) c WHERE c IS NULL OR c = '') THEN
    RAISE EXCEPTION 'pg-offload: zone_map_columns of policy "%" has an empty name', name
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF EXISTS (SELECT FROM offload.policies p WHERE p.name = define_policy.name) THEN
    RAISE EXCEPTION 'pg-offload: policy "%" already exists', name
      USING ERRCODE = 'duplicate_object', HINT = 'Drop it first with offload.drop_policy().';
  END IF;
  INSERT INTO offload.policies (name, time_column, older_than, keep_last, idle_for, keep_hot_bytes,
                                zone_map_columns, segment_bytes, chunk_bytes, compression_level, reader,
                                segment_tables)
  VALUES (name, time_column, older_than, keep_last, idle_for, keep_hot_bytes,
          coalesce(zone_map_columns, '{}'), segment_bytes, chunk_bytes, compression_level, reader,
          segment_tables);
END $$;

CREATE OR REPLACE FUNCTION offload.drop_policy(name text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  users text;
  visible bigint;
  hidden bigint;
BEGIN
  IF NOT EXISTS (SELECT FROM offload.policies p WHERE p.name = drop_policy.name) THEN
    RAISE EXCEPTION 'pg-offload: policy "%" does not exist', name USING ERRCODE = 'undefined_object';
  END IF;
  SELECT string_agg(table_id::text, ', '), count(*) INTO users, visible
    FROM offload.attachments a WHERE a.policy_name = drop_policy.name;
  hidden := offload.policy_attachments(name) - visible;
  IF visible + hidden > 0 THEN
    RAISE EXCEPTION 'pg-offload: policy "%" is attached to %', name,
      concat_ws(' and ', users, CASE WHEN hidden > 0 THEN hidden || ' table(s) of other owners' END)
      USING ERRCODE = 'dependent_objects_still_exist', HINT = 'Detach it first with offload.detach_policy().';
  END IF;
  DELETE FROM offload.policies p WHERE p.name = drop_policy.name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pg-offload: must be the owner of policy "%" (or a member of offload_admin) to drop it', name
      USING ERRCODE = 'insufficient_privilege';
  END IF;
END $$;

-- Is `col` a live column of `rel` whose type has a default btree ordering (so min/max exist)?
-- Zone-map columns must be.
CREATE OR REPLACE FUNCTION offload.has_ordering(rel regclass, col name) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN EXISTS (SELECT FROM pg_attribute a JOIN pg_opclass o ON o.opcintype = a.atttypid
                 JOIN pg_am m ON m.oid = o.opcmethod AND m.amname = 'btree' AND o.opcdefault
                WHERE a.attrelid = rel AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped);

-- A policy attached to a table names columns (time, zone maps): they must stay as named.
CREATE OR REPLACE FUNCTION offload.check_policy_columns(rel regclass) RETURNS void
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

-- Refuses the partitioned tables pg-offload cannot serve, naming why. Returns the partition key.
CREATE OR REPLACE FUNCTION offload.check_partitioned(rel regclass) RETURNS name
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  pt pg_partitioned_table%ROWTYPE;
  sub regclass;
  uniq text;
BEGIN
  SELECT * INTO pt FROM pg_partitioned_table WHERE partrelid = rel;
  IF pt.partstrat <> 'r' THEN
    RAISE EXCEPTION 'pg-offload: table % is % partitioned; only RANGE partitioning is supported', rel,
      CASE pt.partstrat WHEN 'l' THEN 'LIST' WHEN 'h' THEN 'HASH' ELSE pt.partstrat::text END
      USING ERRCODE = 'feature_not_supported';
  END IF;
  IF pt.partnatts <> 1 OR pt.partattrs[0] = 0 THEN
    RAISE EXCEPTION 'pg-offload: table % is partitioned by several columns or an expression; only a single key column is supported', rel
      USING ERRCODE = 'feature_not_supported';
  END IF;
  -- An offloaded partition is a partitioned table too (offload.create_segment_table), not the
  -- user's sub-partitioning.
  SELECT i.inhrelid::regclass INTO sub FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
   WHERE i.inhparent = rel AND c.relkind = 'p' AND NOT offload.is_offloaded_partition(c.oid) LIMIT 1;
  IF sub IS NOT NULL THEN
    RAISE EXCEPTION 'pg-offload: table % has sub-partitioned partition %; multi-level partitioning is not supported', rel, sub
      USING ERRCODE = 'feature_not_supported';
  END IF;
  SELECT string_agg(indexrelid::regclass::text, ', ') INTO uniq
    FROM pg_index WHERE indrelid = rel AND indisunique;
  IF uniq IS NOT NULL THEN
    RAISE EXCEPTION 'pg-offload: partitioned table % has unique index %; PostgreSQL cannot attach a foreign table as a partition of a table with a unique index', rel, uniq
      USING ERRCODE = 'feature_not_supported',
            HINT = 'Replace the unique index or primary key with a non-unique index to offload partitions.';
  END IF;
  RETURN (SELECT attname FROM pg_attribute WHERE attrelid = rel AND attnum = pt.partattrs[0]);
END $$;

CREATE OR REPLACE FUNCTION offload.attach_policy(table_name regclass, policy text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  rel regclass := offload.check_table(table_name);
  p   offload.policies%ROWTYPE;
  col_type regtype;
  problem text;
  hint text;
  is_partitioned boolean := (SELECT relkind = 'p' FROM pg_class WHERE oid = table_name);
  zone_col name;
BEGIN
  SELECT * INTO p FROM offload.policies WHERE name = policy;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pg-offload: policy "%" does not exist', policy USING ERRCODE = 'undefined_object',
      HINT = 'Define it with offload.define_policy().';
  END IF;
  SELECT atttypid::regtype INTO col_type FROM pg_attribute
   WHERE attrelid = rel AND attname = p.time_column AND attnum > 0 AND NOT attisdropped;
  IF col_type IS NULL THEN
    RAISE EXCEPTION 'pg-offload: column "%" of policy "%" does not exist in table %', p.time_column, policy, rel
      USING ERRCODE = 'undefined_column';
  END IF;
  IF NOT (offload.is_time_type(col_type) OR offload.is_integer_type(col_type)) THEN
    problem := 'a key column must be timestamp, timestamptz, date, smallint, integer or bigint';
  ELSIF p.older_than IS NOT NULL AND NOT offload.is_time_type(col_type) THEN
    problem := 'policy "' || policy || '" (older_than) needs a timestamp, timestamptz or date column';
    hint := 'For an integer column define the policy with keep_last.';
  ELSIF p.keep_last IS NOT NULL AND NOT offload.is_integer_type(col_type) THEN
    problem := 'policy "' || policy || '" (keep_last) needs a smallint, integer or bigint column';
    hint := 'For a time or date column define the policy with older_than.';
  END IF;
  IF problem IS NOT NULL THEN
    RAISE EXCEPTION 'pg-offload: column "%" of table % has type %; %', p.time_column, rel, col_type, problem
      USING ERRCODE = 'datatype_mismatch', HINT = coalesce(hint, 'Supported key types: timestamp, timestamptz, date, smallint, integer, bigint.');
  END IF;
  IF is_partitioned AND offload.check_partitioned(rel) <> p.time_column THEN
    RAISE EXCEPTION 'pg-offload: table % is partitioned by "%", but policy "%" uses column "%"', rel,
      offload.check_partitioned(rel), policy, p.time_column
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'A policy on a partitioned table must use its partition key column.';
  END IF;
  FOREACH zone_col IN ARRAY p.zone_map_columns LOOP
    IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = rel AND attname = zone_col
                   AND attnum > 0 AND NOT attisdropped) THEN
      RAISE EXCEPTION 'pg-offload: zone-map column "%" of policy "%" does not exist in table %', zone_col, policy, rel
        USING ERRCODE = 'undefined_column';
    END IF;
    IF NOT offload.has_ordering(rel, zone_col) THEN
      RAISE EXCEPTION 'pg-offload: zone-map column "%" of table % has type %, which has no ordering (min/max)', zone_col, rel,
        (SELECT atttypid::regtype FROM pg_attribute WHERE attrelid = rel AND attname = zone_col)
        USING ERRCODE = 'datatype_mismatch';
    END IF;
  END LOOP;
  IF EXISTS (SELECT FROM offload.attachments WHERE table_id = rel) THEN
    RAISE EXCEPTION 'pg-offload: table % already has a policy attached', rel
      USING ERRCODE = 'duplicate_object', HINT = 'Detach it first with offload.detach_policy().';
  END IF;
  PERFORM offload.check_bridge_reaches(rel);
  INSERT INTO offload.attachments (table_id, policy_name, key_column, key_type, partitioned)
  VALUES (rel, policy, p.time_column, col_type, is_partitioned);
END $$;

-- Detaching stops future offloads; segments already offloaded stay readable.
CREATE OR REPLACE FUNCTION offload.detach_policy(table_name regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  rel regclass := table_name;
BEGIN
  IF NOT offload.owns_table(rel) THEN
    RAISE EXCEPTION 'pg-offload: must be owner of table % (or a member of offload_admin) to detach its policy', rel
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  DELETE FROM offload.attachments WHERE table_id = rel;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pg-offload: table % has no policy attached', rel USING ERRCODE = 'undefined_object';
  END IF;
END $$;

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

CREATE OR REPLACE FUNCTION offload.check_attachment() RETURNS trigger
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
    IF NOT offload.has_ordering(NEW.table_id, zone_col) THEN
      RAISE EXCEPTION 'pg-offload: zone-map column "%" of policy "%" is not a column of table % with an ordering',
        zone_col, NEW.policy_name, NEW.table_id
        USING ERRCODE = 'invalid_parameter_value', HINT = 'Attach policies with offload.attach_policy().';
    END IF;
  END LOOP;
  RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS check_attachment ON offload.attachments;
CREATE TRIGGER check_attachment BEFORE INSERT OR UPDATE OF table_id, policy_name, key_column, key_type, partitioned
  ON offload.attachments FOR EACH ROW EXECUTE FUNCTION offload.check_attachment();

-- What an offload of the table would do now: key ranges of a plain table, or partitions of a
-- partitioned one, with row and byte counts. Does nothing else (idle_for notes activity).
CREATE OR REPLACE FUNCTION offload.preview(table_name regclass)
RETURNS TABLE (partition_table regclass, range_lo text, range_hi text, rows bigint, heap_bytes bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  rel regclass := offload.check_table(table_name);
  a offload.attachments%ROWTYPE;
  seg record;
BEGIN
  SELECT * INTO a FROM offload.attachments WHERE table_id = rel;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pg-offload: table % has no policy attached', rel USING ERRCODE = 'undefined_object';
  END IF;
  FOR seg IN SELECT * FROM offload.plan_offload(rel, 64 * 1024 * 1024) LOOP
    partition_table := seg.partition_table;
    range_lo := seg.range_lo;
    range_hi := seg.range_hi;
    IF seg.partition_table IS NOT NULL THEN
      EXECUTE format('SELECT count(*) FROM ONLY %s', seg.partition_table) INTO rows;
      heap_bytes := pg_table_size(seg.partition_table);
    ELSE
      EXECUTE format('SELECT count(*), coalesce(sum(pg_column_size(t.*)), 0) FROM ONLY %s t WHERE %I >= %L::%s AND %I < %L::%s',
                     rel, a.key_column, seg.range_lo, a.key_type, a.key_column, seg.range_hi, a.key_type)
        INTO rows, heap_bytes;
    END IF;
    RETURN NEXT;
  END LOOP;
END $$;

-- INSERT/UPDATE/DELETE count of a table (all its partitions) from the statistics collector.
CREATE OR REPLACE FUNCTION offload.activity_count(rel regclass) RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint
    FROM pg_stat_all_tables
   WHERE relid = rel OR relid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = rel);
$$;

-- Records whether the table changed since last seen; returns how long it has been idle.
-- SECURITY DEFINER: preview() calls it for table owners, who may not update the catalog.
CREATE OR REPLACE FUNCTION offload.observe_activity(rel regclass) RETURNS interval
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  seen bigint := offload.activity_count(rel);
  changed_at timestamptz;
BEGIN
  UPDATE offload.attachments
     SET activity_changed_at = CASE WHEN activity_count IS DISTINCT FROM seen
                                    THEN now() ELSE activity_changed_at END,
         activity_count = seen
   WHERE table_id = rel
  RETURNING activity_changed_at INTO changed_at;
  RETURN now() - changed_at;
END $$;

-- The schedule queues a job only for tables with something due, checked cheaply: one row below
-- the cutoff (an index on the key makes it a single probe), or one due partition.
CREATE OR REPLACE FUNCTION offload.is_due(rel regclass) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  a offload.attachments%ROWTYPE;
  cutoff text;
  result boolean;
BEGIN
  SELECT * INTO a FROM offload.attachments WHERE table_id = rel;
  IF NOT FOUND OR NOT EXISTS (SELECT FROM pg_class WHERE oid = rel) THEN
    RETURN false;
  END IF;
  IF a.partitioned THEN
    RETURN EXISTS (SELECT FROM offload.due_partitions(rel));
  END IF;
  cutoff := offload.hot_cutoff(rel);
  IF cutoff IS NULL THEN
    RETURN false;
  END IF;
  EXECUTE format('SELECT EXISTS (SELECT FROM ONLY %s WHERE %I < %L::%s)', rel, a.key_column, cutoff, a.key_type)
    INTO result;
  RETURN result;
END $$;
REVOKE EXECUTE ON FUNCTION offload.is_due(rel regclass) FROM PUBLIC;

-- Per-policy write settings (NULL: use the bridge's configuration).
CREATE OR REPLACE FUNCTION offload.write_settings(rel regclass)
RETURNS TABLE (chunk_bytes bigint, compression_level int)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT p.chunk_bytes, p.compression_level
    FROM offload.attachments a JOIN offload.policies p ON p.name = a.policy_name
   WHERE a.table_id = rel;
$$;
REVOKE EXECUTE ON FUNCTION offload.write_settings(rel regclass) FROM PUBLIC;

-- The key below which rows go cold now (NULL: nothing is due). For idle_for and keep_hot this
-- also depends on the table's state; partitions are chosen by offload.due_partitions().
CREATE OR REPLACE FUNCTION offload.hot_cutoff(rel regclass) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  a offload.attachments%ROWTYPE;
  p offload.policies%ROWTYPE;
  newest numeric;
  newest_key text;
  table_bytes float8;
BEGIN
  SELECT * INTO a FROM offload.attachments WHERE table_id = rel;
  SELECT * INTO p FROM offload.policies WHERE name = a.policy_name;
  IF p.older_than IS NOT NULL THEN
    RETURN CASE a.key_type
      WHEN 'timestamptz'::regtype THEN (now() - p.older_than)::text
      WHEN 'timestamp'::regtype THEN (localtimestamp - p.older_than)::text
      ELSE (current_date - p.older_than)::date::text
    END;
  ELSIF p.keep_last IS NOT NULL THEN
    EXECUTE format('SELECT max(%I)::numeric FROM ONLY %s', a.key_column, rel) INTO newest;
    RETURN (newest - p.keep_last + 1)::text;
  ELSIF p.idle_for IS NOT NULL THEN
    IF offload.observe_activity(rel) < p.idle_for THEN
      RETURN NULL;
    END IF;
    -- The whole table: everything up to and including the newest key.
    EXECUTE format('SELECT max(%I)::text FROM ONLY %s', a.key_column, rel) INTO newest_key;
    RETURN offload.key_after(newest_key, a.key_type);
  END IF;
  -- keep_hot_bytes: the oldest rows beyond the allowance. Counted over live rows, since the heap
  -- file keeps its size after rows move out (until VACUUM FULL).
  EXECUTE format('SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM ONLY %s t', rel) INTO table_bytes;
  IF table_bytes <= p.keep_hot_bytes THEN
    RETURN NULL;
  END IF;
  RETURN offload.key_at_fraction(rel, a.key_column, 1 - p.keep_hot_bytes / table_bytes);
END $$;
REVOKE EXECUTE ON FUNCTION offload.hot_cutoff(rel regclass) FROM PUBLIC;

CREATE OR REPLACE FUNCTION offload.has_rows(rel regclass) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result boolean;
BEGIN
  EXECUTE format('SELECT EXISTS (SELECT FROM ONLY %s)', rel) INTO result;
  RETURN result;
END $$;

CREATE OR REPLACE FUNCTION offload.max_key(rel regclass, key_column name) RETURNS numeric
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result numeric;
BEGIN
  EXECUTE format('SELECT max(%I)::numeric FROM ONLY %s', key_column, rel) INTO result;
  RETURN result;
END $$;

CREATE OR REPLACE FUNCTION offload.key_less(x text, y text, key_type regtype) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result boolean;
BEGIN
  EXECUTE format('SELECT %L::%2$s < %3$L::%2$s', x, key_type, y) INTO result;
  RETURN result;
END $$;

-- The smallest key value greater than k (so that "< result" includes k).
CREATE OR REPLACE FUNCTION offload.key_after(k text, key_type regtype) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result text;
BEGIN
  IF k IS NULL THEN
    RETURN NULL;
  END IF;
  EXECUTE format('SELECT (%L::%s + %s)::text', k, key_type,
                 CASE WHEN offload.is_integer_type(key_type) THEN '1'
                      WHEN key_type = 'date'::regtype THEN '1'
                      ELSE 'interval ''1 microsecond''' END)
    INTO result;
  RETURN result;
END $$;

CREATE OR REPLACE FUNCTION offload.key_at_fraction(rel regclass, key_column name, fraction float8) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result text;
BEGIN
  EXECUTE format('SELECT (percentile_disc(%L::float8) WITHIN GROUP (ORDER BY %I))::text FROM ONLY %s',
                 greatest(0, least(1, fraction)), key_column, rel)
    INTO result;
  RETURN result;
END $$;

CREATE OR REPLACE FUNCTION offload.partition_lower_bound(part regclass, key_type regtype) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  bound text := pg_get_expr((SELECT relpartbound FROM pg_class WHERE oid = part), part);
  lower_expr text := substring(bound FROM '^FOR VALUES FROM \((.*)\) TO \(');
  result text;
BEGIN
  IF lower_expr IS NULL OR lower_expr ILIKE '%MINVALUE%' THEN
    RETURN NULL;
  END IF;
  EXECUTE format('SELECT (%s)::%s::text', lower_expr, key_type) INTO result;
  RETURN result;
END $$;

-- Upper bound of a range partition as text in the key type, NULL for MAXVALUE or DEFAULT.
CREATE OR REPLACE FUNCTION offload.partition_upper_bound(part regclass, key_type regtype) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  bound text := pg_get_expr((SELECT relpartbound FROM pg_class WHERE oid = part), part);
  upper_expr text := substring(bound FROM '\) TO \((.*)\)$');
  result text;
BEGIN
  IF upper_expr IS NULL OR upper_expr ILIKE '%MAXVALUE%' THEN
    RETURN NULL;
  END IF;
  -- The expression comes from pg_get_expr: a quoted constant of the key type.
  EXECUTE format('SELECT (%s)::%s::text', upper_expr, key_type) INTO result;
  RETURN result;
END $$;

-- The heap partitions of a partitioned table that its policy says are due now, oldest first.
-- Never the DEFAULT partition, nor one without an upper bound.
CREATE OR REPLACE FUNCTION offload.due_partitions(rel regclass)
RETURNS TABLE (partition_table regclass, range_lo text, range_hi text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  a offload.attachments%ROWTYPE;
  p offload.policies%ROWTYPE;
  cutoff text;
  hot_bytes float8;
  part record;
  is_due boolean;
BEGIN
  SELECT * INTO a FROM offload.attachments WHERE table_id = rel;
  SELECT * INTO p FROM offload.policies WHERE name = a.policy_name;
  IF p.older_than IS NOT NULL THEN
    cutoff := offload.hot_cutoff(rel);
  ELSIF p.keep_last IS NOT NULL THEN
    -- The newest key among heap partitions (reading the offloaded ones would fetch them).
    SELECT (max(offload.max_key(c.oid, a.key_column)) - p.keep_last + 1)::text INTO cutoff
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = rel AND c.relkind = 'r';
  ELSIF p.idle_for IS NOT NULL AND offload.observe_activity(rel) < p.idle_for THEN
    RETURN;
  END IF;
  SELECT coalesce(sum(pg_table_size(c.oid)), 0) INTO hot_bytes
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
   WHERE i.inhparent = rel AND c.relkind = 'r';
  FOR part IN
    SELECT b.*, pg_table_size(b.t) AS bytes
      FROM (SELECT c.oid::regclass AS t,
                   offload.partition_lower_bound(c.oid, a.key_type) AS lo,
                   offload.partition_upper_bound(c.oid, a.key_type) AS hi
              FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = rel AND c.relkind = 'r'
               AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT') b
     ORDER BY offload.sortable_key(b.lo, a.key_type) NULLS FIRST
  LOOP
    CONTINUE WHEN part.hi IS NULL;
    -- idle_for takes the partitions holding rows; empty ones (future months) keep taking inserts.
    CONTINUE WHEN p.idle_for IS NOT NULL AND NOT offload.has_rows(part.t);
    IF cutoff IS NOT NULL THEN
      EXECUTE format('SELECT %L::%2$s <= %3$L::%2$s', part.hi, a.key_type, cutoff) INTO is_due;
      CONTINUE WHEN NOT is_due;
    ELSIF p.keep_hot_bytes IS NOT NULL THEN
      CONTINUE WHEN hot_bytes <= p.keep_hot_bytes;
      hot_bytes := hot_bytes - part.bytes;
    END IF;
    partition_table := part.t;
    range_lo := part.lo;
    range_hi := part.hi;
    RETURN NEXT;
  END LOOP;
END $$;
REVOKE EXECUTE ON FUNCTION offload.due_partitions(rel regclass) FROM PUBLIC;

-- Cuts the due rows of a table into key ranges [range_lo, range_hi) of about target_bytes of heap
-- each, with one sort of the due keys (percentile_disc).
CREATE OR REPLACE FUNCTION offload.due_segments(rel regclass, target_bytes bigint)
RETURNS TABLE (range_lo text, range_hi text)
-- VOLATILE: hot_cutoff() notes the table's activity for idle_for policies.
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
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
REVOKE EXECUTE ON FUNCTION offload.due_segments(rel regclass, target_bytes bigint) FROM PUBLIC;

-- Everything due on a table: ranges of a plain table (cut to about segment_bytes of heap each, or
-- the policy's own segment size) or whole partitions.
CREATE OR REPLACE FUNCTION offload.plan_offload(rel regclass, default_segment_bytes bigint)
RETURNS TABLE (partition_table regclass, range_lo text, range_hi text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF (SELECT partitioned FROM offload.attachments WHERE table_id = rel) THEN
    RETURN QUERY SELECT * FROM offload.due_partitions(rel);
  ELSE
    RETURN QUERY
      SELECT NULL::regclass, d.range_lo, d.range_hi
        FROM offload.due_segments(rel, coalesce(
               (SELECT p.segment_bytes FROM offload.attachments a
                  JOIN offload.policies p ON p.name = a.policy_name WHERE a.table_id = rel),
               default_segment_bytes)) d;
  END IF;
END $$;
REVOKE EXECUTE ON FUNCTION offload.plan_offload(rel regclass, default_segment_bytes bigint) FROM PUBLIC;
