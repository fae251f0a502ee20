-- The policy engine: partitioned tables (whole partitions go cold), idle_for and keep_hot rules,
-- per-policy segment/chunk/compression settings, zone-map columns, and offload.preview().

ALTER TABLE offload.policies
  DROP CONSTRAINT policies_check,
  ADD COLUMN idle_for          interval CHECK (idle_for > interval '0'),
  ADD COLUMN keep_hot_bytes    bigint CHECK (keep_hot_bytes >= 0),
  ADD COLUMN zone_map_columns  name[] NOT NULL DEFAULT '{}',
  ADD COLUMN segment_bytes     bigint CHECK (segment_bytes >= 65536),
  ADD COLUMN chunk_bytes       bigint CHECK (chunk_bytes BETWEEN 4096 AND 268435456),
  ADD COLUMN compression_level int CHECK (compression_level BETWEEN 0 AND 22),
  ADD CONSTRAINT policies_one_rule CHECK (
    num_nonnulls(older_than, keep_last, idle_for, keep_hot_bytes) = 1);

ALTER TABLE offload.attachments
  ADD COLUMN partitioned boolean NOT NULL DEFAULT false,
  -- idle_for: the table's INSERT/UPDATE/DELETE counter when last seen, and when it last moved.
  ADD COLUMN activity_count bigint,
  ADD COLUMN activity_changed_at timestamptz NOT NULL DEFAULT now();

ALTER TABLE offload.segments
  -- For a partition offload: the partition that was replaced, and its bound clause.
  ADD COLUMN partition_name text,
  ADD COLUMN partition_bound text,
  -- Exact min/max of the policy's zone-map columns in the segment, {"col": [min, max]}.
  ADD COLUMN zone_map jsonb NOT NULL DEFAULT '{}';

DROP FUNCTION offload.define_policy(text, text, interval, bigint);

CREATE FUNCTION offload.define_policy(
  name text,
  time_column text,
  older_than interval DEFAULT NULL,
  keep_last bigint DEFAULT NULL,
  idle_for interval DEFAULT NULL,
  keep_hot_bytes bigint DEFAULT NULL,
  zone_map_columns text[] DEFAULT '{}',
  segment_bytes bigint DEFAULT NULL,
  chunk_bytes bigint DEFAULT NULL,
  compression_level int DEFAULT NULL
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
  IF EXISTS (SELECT FROM unnest(zone_map_columns) c WHERE c IS NULL OR c = '') THEN
    RAISE EXCEPTION 'pg-offload: zone_map_columns of policy "%" has an empty name', name
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF EXISTS (SELECT FROM offload.policies p WHERE p.name = define_policy.name) THEN
    RAISE EXCEPTION 'pg-offload: policy "%" already exists', name
      USING ERRCODE = 'duplicate_object', HINT = 'Drop it first with offload.drop_policy().';
  END IF;
  INSERT INTO offload.policies (name, time_column, older_than, keep_last, idle_for, keep_hot_bytes,
                                zone_map_columns, segment_bytes, chunk_bytes, compression_level)
  VALUES (name, time_column, older_than, keep_last, idle_for, keep_hot_bytes,
          coalesce(zone_map_columns, '{}'), segment_bytes, chunk_bytes, compression_level);
END $$;

-- Refuses the partitioned tables pg-offload cannot serve, naming why. Returns the partition key.
CREATE FUNCTION offload.check_partitioned(rel regclass) RETURNS name
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
  SELECT i.inhrelid::regclass INTO sub FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
   WHERE i.inhparent = rel AND c.relkind = 'p' LIMIT 1;
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

CREATE OR REPLACE FUNCTION offload.check_table(rel regclass) RETURNS regclass
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c   pg_class%ROWTYPE;
  referencing text;
BEGIN
  IF rel IS NULL THEN
    RAISE EXCEPTION 'pg-offload: no table given' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  SELECT * INTO c FROM pg_class WHERE oid = rel;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pg-offload: table % no longer exists', rel USING ERRCODE = 'undefined_table';
  ELSIF c.relkind NOT IN ('r', 'p') THEN
    RAISE EXCEPTION 'pg-offload: % is not a table (it is a %)', rel,
      CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
        WHEN 'f' THEN 'foreign table' WHEN 'S' THEN 'sequence' ELSE 'relation of kind ' || c.relkind::text END
      USING ERRCODE = 'wrong_object_type';
  ELSIF c.relispartition THEN
    RAISE EXCEPTION 'pg-offload: table % is a partition; attach the policy to its partitioned table %', rel,
      (SELECT inhparent::regclass FROM pg_inherits WHERE inhrelid = rel)
      USING ERRCODE = 'feature_not_supported';
  ELSIF c.relpersistence = 't' THEN
    RAISE EXCEPTION 'pg-offload: table % is temporary; temporary tables cannot be offloaded', rel
      USING ERRCODE = 'feature_not_supported';
  ELSIF c.relpersistence = 'u' THEN
    RAISE EXCEPTION 'pg-offload: table % is unlogged; unlogged tables are not supported', rel
      USING ERRCODE = 'feature_not_supported',
            HINT = 'Make it logged first: ALTER TABLE ... SET LOGGED.';
  END IF;
  IF NOT pg_has_role(current_user, c.relowner, 'USAGE') THEN
    RAISE EXCEPTION 'pg-offload: must be owner of table % to offload it', rel
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF EXISTS (SELECT FROM pg_attribute WHERE attrelid = rel AND attnum > 0
             AND NOT attisdropped AND attgenerated <> '') THEN
    RAISE EXCEPTION 'pg-offload: table % has generated columns; they are not supported yet', rel
      USING ERRCODE = 'feature_not_supported';
  END IF;
  -- Moving rows out deletes them from the heap: a foreign key pointing here would cascade or fail.
  SELECT string_agg(conrelid::regclass::text, ', ') INTO referencing
    FROM pg_constraint WHERE confrelid = rel AND contype = 'f';
  IF referencing IS NOT NULL THEN
    RAISE EXCEPTION 'pg-offload: table % is referenced by foreign keys from %; offloading would delete referenced rows', rel, referencing
      USING ERRCODE = 'feature_not_supported';
  END IF;
  IF c.relkind = 'p' THEN
    PERFORM offload.check_partitioned(rel);
  END IF;
  RETURN rel;
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
    IF NOT EXISTS (SELECT FROM pg_attribute a JOIN pg_opclass o ON o.opcintype = a.atttypid
                   JOIN pg_am m ON m.oid = o.opcmethod AND m.amname = 'btree' AND o.opcdefault
                   WHERE a.attrelid = rel AND a.attname = zone_col) THEN
      RAISE EXCEPTION 'pg-offload: zone-map column "%" of table % has type %, which has no ordering (min/max)', zone_col, rel,
        (SELECT atttypid::regtype FROM pg_attribute WHERE attrelid = rel AND attname = zone_col)
        USING ERRCODE = 'datatype_mismatch';
    END IF;
  END LOOP;
  IF EXISTS (SELECT FROM offload.attachments WHERE table_id = rel) THEN
    RAISE EXCEPTION 'pg-offload: table % already has a policy attached', rel
      USING ERRCODE = 'duplicate_object', HINT = 'Detach it first with offload.detach_policy().';
  END IF;
  INSERT INTO offload.attachments (table_id, policy_name, key_column, key_type, partitioned)
  VALUES (rel, policy, p.time_column, col_type, is_partitioned);
END $$;

-- INSERT/UPDATE/DELETE count of a table (all its partitions) from the statistics collector.
CREATE FUNCTION offload.activity_count(rel regclass) RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint
    FROM pg_stat_all_tables
   WHERE relid = rel OR relid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = rel);
$$;

-- Records whether the table changed since last seen; returns how long it has been idle.
-- SECURITY DEFINER: preview() calls it for table owners, who may not update the catalog.
CREATE FUNCTION offload.observe_activity(rel regclass) RETURNS interval
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

-- The smallest key value greater than k (so that "< result" includes k).
CREATE FUNCTION offload.key_after(k text, key_type regtype) RETURNS text
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

CREATE FUNCTION offload.key_at_fraction(rel regclass, key_column name, fraction float8) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result text;
BEGIN
  EXECUTE format('SELECT (percentile_disc(%L::float8) WITHIN GROUP (ORDER BY %I))::text FROM ONLY %s',
                 greatest(0, least(1, fraction)), key_column, rel)
    INTO result;
  RETURN result;
END $$;

-- Upper bound of a range partition as text in the key type, NULL for MAXVALUE or DEFAULT.
CREATE FUNCTION offload.partition_upper_bound(part regclass, key_type regtype) RETURNS text
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

CREATE FUNCTION offload.partition_lower_bound(part regclass, key_type regtype) RETURNS text
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

CREATE FUNCTION offload.max_key(rel regclass, key_column name) RETURNS numeric
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result numeric;
BEGIN
  EXECUTE format('SELECT max(%I)::numeric FROM ONLY %s', key_column, rel) INTO result;
  RETURN result;
END $$;

-- A number that orders key values of any supported key type (for sorting partitions by bound).
CREATE FUNCTION offload.sortable_key(k text, key_type regtype) RETURNS numeric
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN k IS NULL OR k = 'MINVALUE' THEN NULL
            WHEN offload.is_integer_type(key_type) THEN k::numeric
            ELSE extract(epoch FROM k::timestamptz) END;

CREATE FUNCTION offload.has_rows(rel regclass) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result boolean;
BEGIN
  EXECUTE format('SELECT EXISTS (SELECT FROM ONLY %s)', rel) INTO result;
  RETURN result;
END $$;

-- The heap partitions of a partitioned table that its policy says are due now, oldest first.
-- Never the DEFAULT partition, nor one without an upper bound.
CREATE FUNCTION offload.due_partitions(rel regclass)
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

-- What an offload of the table would do now: key ranges of a plain table, or partitions of a
-- partitioned one, with row and byte counts. Does nothing else (idle_for notes activity).
CREATE FUNCTION offload.preview(table_name regclass)
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

-- Everything due on a table: ranges of a plain table (cut to about segment_bytes of heap each, or
-- the policy's own segment size) or whole partitions.
CREATE FUNCTION offload.plan_offload(rel regclass, default_segment_bytes bigint)
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

-- Per-policy write settings (NULL: use the bridge's configuration).
CREATE FUNCTION offload.write_settings(rel regclass)
RETURNS TABLE (chunk_bytes bigint, compression_level int)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT p.chunk_bytes, p.compression_level
    FROM offload.attachments a JOIN offload.policies p ON p.name = a.policy_name
   WHERE a.table_id = rel;
$$;

-- due_segments must not take a policy-specific cutoff for idle_for/keep_hot twice: it is STABLE
-- no longer, since hot_cutoff now records activity.
ALTER FUNCTION offload.due_segments(regclass, bigint) VOLATILE;

DROP FUNCTION offload.begin_segment(bigint, regclass, text, text, text);
CREATE FUNCTION offload.begin_segment(job bigint, rel regclass, lo text, hi text, store text,
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

-- The columns of the parent in its order: a partition may order (or have dropped) columns
-- differently, and the segment table always has the parent's layout.
CREATE FUNCTION offload.select_list(rel regclass) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)
    FROM pg_attribute WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped;
$$;

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

-- The statement that, run first in a partition offload's transaction, stops writes to the
-- partition until the commit (which drops it), so that the copy holds every row. NULL for ranges.
CREATE FUNCTION offload.segment_lock_statement(segment bigint) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT format('LOCK TABLE ONLY %s IN SHARE MODE', s.partition_name::regclass)
    FROM offload.segments s WHERE s.id = segment AND s.partition_name IS NOT NULL;
$$;

-- Exact min/max of the policy's zone-map columns over the segment's rows, in the copy's snapshot.
CREATE FUNCTION offload.segment_zone_map(segment bigint) RETURNS jsonb
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

CREATE OR REPLACE FUNCTION offload.commit_segment(segment bigint, chunks jsonb, reader_program text,
                                                  copied_rows bigint)
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

  INSERT INTO offload.chunks (segment_id, epoch, seq, object_key, rows, raw_bytes, stored_bytes, crc32c, codec)
  SELECT segment, s.epoch, c.seq, c.object_key, c.rows, c.raw_bytes, c.stored_bytes, c.crc32c, c.codec
    FROM jsonb_to_recordset(chunks) AS c(seq int, object_key text, rows bigint, raw_bytes bigint,
                                         stored_bytes bigint, crc32c bigint, codec text);

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
    PERFORM set_config('session_replication_role', 'replica', true);
    EXECUTE format('DELETE FROM ONLY %s WHERE %s', s.table_id, offload.range_condition(s));
    GET DIAGNOSTICS deleted = ROW_COUNT;
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

REVOKE EXECUTE ON FUNCTION offload.begin_segment(bigint, regclass, text, text, text, regclass),
  offload.plan_offload(regclass, bigint), offload.due_partitions(regclass),
  offload.segment_lock_statement(bigint), offload.segment_zone_map(bigint),
  offload.write_settings(regclass) FROM PUBLIC;
