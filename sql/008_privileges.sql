-- Privileges: who may manage offloads, who sees which catalog rows, and whose rights user code
-- runs with.
--
-- * A table's owner (or a member of the owner role) manages its offloads, as before; so does a
--   member of the cluster role offload_admin, created here, for operators who run offloads for
--   tables they do not own. PostgreSQL's own checks still apply on top: load_back and truncate
--   change the table itself and need the rights PostgreSQL asks for that.
-- * Ordinary users see the catalog rows (attachments, jobs, segments, chunks, layouts, the
--   offload.tables view) of tables they manage only. Policies stay visible to all: they are
--   shared definitions holding no data, like functions.
-- * Code a table's owner controls never runs with the bridge's superuser rights: the DELETE that
--   moves rows out runs as the table's owner (ALWAYS/REPLICA triggers and rules are theirs), and
--   rewrite jobs evaluate the user's condition and assignments as the role that asked for them.

DO $$
BEGIN
  CREATE ROLE offload_admin NOLOGIN;
EXCEPTION WHEN duplicate_object THEN
  NULL; -- another database of this cluster created it
END $$;
COMMENT ON ROLE offload_admin IS 'pg-offload: may attach policies, run, load back and rewrite offloads of any table';

CREATE FUNCTION offload.is_admin() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN pg_has_role(current_user, 'offload_admin', 'USAGE');

CREATE OR REPLACE FUNCTION offload.owns_table(rel regclass) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = rel), 'USAGE')
    OR offload.is_admin();

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
  IF NOT offload.owns_table(rel) THEN
    RAISE EXCEPTION 'pg-offload: must be owner of table % (or a member of offload_admin) to offload it', rel
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

-- How many tables use a policy, counting those the caller cannot see.
CREATE FUNCTION offload.policy_attachments(policy text) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
RETURN (SELECT count(*) FROM offload.attachments WHERE policy_name = policy);

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

-- Catalog rows: each user sees those of the tables they manage.
DROP POLICY own_delete ON offload.policies;
CREATE POLICY own_delete ON offload.policies FOR DELETE
  USING (pg_has_role(current_user, owner, 'USAGE') OR offload.is_admin());

DROP POLICY read_all ON offload.attachments;
CREATE POLICY read_own ON offload.attachments FOR SELECT USING (offload.owns_table(table_id));

-- Jobs run with the rights of whoever asked for them: nobody may ask in another role's name.
DROP POLICY read_all ON offload.jobs;
DROP POLICY own_insert ON offload.jobs;
CREATE POLICY read_own ON offload.jobs FOR SELECT USING (offload.owns_table(table_id));
CREATE POLICY own_insert ON offload.jobs FOR INSERT
  WITH CHECK (offload.owns_table(table_id) AND requested_by = current_user);

ALTER TABLE offload.segments ENABLE ROW LEVEL SECURITY;
CREATE POLICY read_own ON offload.segments FOR SELECT USING (offload.owns_table(table_id));

ALTER TABLE offload.chunks ENABLE ROW LEVEL SECURITY;
CREATE POLICY read_own ON offload.chunks FOR SELECT
  USING (EXISTS (SELECT FROM offload.segments s WHERE s.id = segment_id));

ALTER TABLE offload.segment_layouts ENABLE ROW LEVEL SECURITY;
CREATE POLICY read_own ON offload.segment_layouts FOR SELECT
  USING (EXISTS (SELECT FROM offload.segments s WHERE s.id = segment_id));

-- The view reads the catalog with the caller's rights, so it lists the caller's tables only.
ALTER VIEW offload.tables SET (security_invoker = true);

-- Installation ids and system identifiers are the bridge's business.
REVOKE SELECT ON offload.installation FROM PUBLIC;

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
