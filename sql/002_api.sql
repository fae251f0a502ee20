-- The SQL API users call: define and attach policies, run offloads, see state.
-- Functions run as the caller (SECURITY INVOKER); row-level security on the catalog lets callers
-- touch only what concerns tables they own. Every function pins its search_path.

-- Table arguments are regclass: PostgreSQL resolves the name with the caller's search_path and
-- raises "relation ... does not exist" at the call itself.

-- Checks that pg-offload can serve a table, raising a clear error naming what is wrong. Used at
-- attach time and again before every run.
CREATE FUNCTION offload.check_table(rel regclass) RETURNS regclass
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
  ELSIF c.relkind = 'p' THEN
    RAISE EXCEPTION 'pg-offload: table % is partitioned; partitioned tables are not supported yet', rel
      USING ERRCODE = 'feature_not_supported';
  ELSIF c.relkind <> 'r' THEN
    RAISE EXCEPTION 'pg-offload: % is not a table (it is a %)', rel,
      CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
        WHEN 'f' THEN 'foreign table' WHEN 'S' THEN 'sequence' ELSE 'relation of kind ' || c.relkind::text END
      USING ERRCODE = 'wrong_object_type';
  ELSIF c.relispartition THEN
    RAISE EXCEPTION 'pg-offload: table % is a partition; partitioned tables are not supported yet', rel
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
  RETURN rel;
END $$;

CREATE FUNCTION offload.define_policy(
  name text,
  time_column text,
  older_than interval DEFAULT NULL,
  keep_last bigint DEFAULT NULL
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
  IF (older_than IS NULL) = (keep_last IS NULL) THEN
    RAISE EXCEPTION 'pg-offload: policy "%" needs exactly one of older_than (for time and date columns) or keep_last (for integer columns)', name
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF older_than IS NOT NULL AND NOT older_than > interval '0' THEN
    RAISE EXCEPTION 'pg-offload: older_than must be a positive interval, got %', older_than
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF keep_last IS NOT NULL AND keep_last <= 0 THEN
    RAISE EXCEPTION 'pg-offload: keep_last must be positive, got %', keep_last
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF EXISTS (SELECT FROM offload.policies p WHERE p.name = define_policy.name) THEN
    RAISE EXCEPTION 'pg-offload: policy "%" already exists', name
      USING ERRCODE = 'duplicate_object', HINT = 'Drop it first with offload.drop_policy().';
  END IF;
  INSERT INTO offload.policies (name, time_column, older_than, keep_last)
  VALUES (name, time_column, older_than, keep_last);
END $$;

CREATE FUNCTION offload.drop_policy(name text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  users text;
BEGIN
  IF NOT EXISTS (SELECT FROM offload.policies p WHERE p.name = drop_policy.name) THEN
    RAISE EXCEPTION 'pg-offload: policy "%" does not exist', name USING ERRCODE = 'undefined_object';
  END IF;
  SELECT string_agg(table_id::text, ', ') INTO users
    FROM offload.attachments a WHERE a.policy_name = drop_policy.name;
  IF users IS NOT NULL THEN
    RAISE EXCEPTION 'pg-offload: policy "%" is attached to %', name, users
      USING ERRCODE = 'dependent_objects_still_exist', HINT = 'Detach it first with offload.detach_policy().';
  END IF;
  DELETE FROM offload.policies p WHERE p.name = drop_policy.name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pg-offload: must be the owner of policy "%" to drop it', name
      USING ERRCODE = 'insufficient_privilege';
  END IF;
END $$;

-- The key types that can bound a segment's range with a CHECK constraint.
CREATE FUNCTION offload.is_time_type(t regtype) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
RETURN t IN ('timestamp'::regtype, 'timestamptz'::regtype, 'date'::regtype);

CREATE FUNCTION offload.is_integer_type(t regtype) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
RETURN t IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype);

CREATE FUNCTION offload.attach_policy(table_name regclass, policy text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  rel regclass := offload.check_table(table_name);
  p   offload.policies%ROWTYPE;
  col_type regtype;
  problem text;
  hint text;
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
  IF p.older_than IS NOT NULL AND NOT offload.is_time_type(col_type) THEN
    problem := 'policy "' || policy || '" (older_than) needs a timestamp, timestamptz or date column';
    IF offload.is_integer_type(col_type) THEN
      hint := 'For an integer column define the policy with keep_last.';
    END IF;
  ELSIF p.keep_last IS NOT NULL AND NOT offload.is_integer_type(col_type) THEN
    problem := 'policy "' || policy || '" (keep_last) needs a smallint, integer or bigint column';
    IF offload.is_time_type(col_type) THEN
      hint := 'For a time or date column define the policy with older_than.';
    END IF;
  END IF;
  IF problem IS NOT NULL THEN
    RAISE EXCEPTION 'pg-offload: column "%" of table % has type %; %', p.time_column, rel, col_type, problem
      USING ERRCODE = 'datatype_mismatch', HINT = coalesce(hint, 'Supported key types: timestamp, timestamptz, date, smallint, integer, bigint.');
  END IF;
  IF EXISTS (SELECT FROM offload.attachments WHERE table_id = rel) THEN
    RAISE EXCEPTION 'pg-offload: table % already has a policy attached', rel
      USING ERRCODE = 'duplicate_object', HINT = 'Detach it first with offload.detach_policy().';
  END IF;
  INSERT INTO offload.attachments (table_id, policy_name, key_column, key_type)
  VALUES (rel, policy, p.time_column, col_type);
END $$;

-- Detaching stops future offloads; segments already offloaded stay readable.
CREATE FUNCTION offload.detach_policy(table_name regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  rel regclass := table_name;
BEGIN
  IF NOT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = rel), 'USAGE') THEN
    RAISE EXCEPTION 'pg-offload: must be owner of table % to detach its policy', rel
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  DELETE FROM offload.attachments WHERE table_id = rel;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pg-offload: table % has no policy attached', rel USING ERRCODE = 'undefined_object';
  END IF;
END $$;

-- Queues an offload job for the table now (or returns the live one) and wakes the bridges.
CREATE FUNCTION offload.run(table_name regclass) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  rel regclass := offload.check_table(table_name);
  job_id bigint;
BEGIN
  IF NOT EXISTS (SELECT FROM offload.attachments WHERE table_id = rel) THEN
    RAISE EXCEPTION 'pg-offload: table % has no policy attached', rel USING ERRCODE = 'undefined_object',
      HINT = 'Attach one with offload.attach_policy().';
  END IF;
  INSERT INTO offload.jobs (table_id) VALUES (rel)
  ON CONFLICT (table_id) WHERE state IN ('queued', 'running') DO NOTHING
  RETURNING id INTO job_id;
  IF job_id IS NULL THEN
    SELECT id INTO job_id FROM offload.jobs WHERE table_id = rel AND state IN ('queued', 'running');
    UPDATE offload.jobs SET run_after = now() WHERE id = job_id AND state = 'queued';
  END IF;
  PERFORM pg_notify('offload_jobs', job_id::text);
  RETURN job_id;
END $$;

CREATE VIEW offload.tables AS
WITH known AS (
  SELECT table_id FROM offload.attachments
  UNION
  SELECT table_id FROM offload.segments WHERE state = 'committed'
)
SELECT k.table_id AS table_name,
       a.policy_name AS policy,
       CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint END AS hot_rows_estimate,
       pg_table_size(k.table_id) AS hot_bytes,
       count(s.id) AS cold_segments,
       coalesce(sum(s.rows), 0)::bigint AS cold_rows,
       coalesce(sum(s.raw_bytes), 0)::bigint AS cold_raw_bytes,
       coalesce(sum(s.stored_bytes), 0)::bigint AS cold_stored_bytes,
       max(s.committed_at) AS last_offload_at
  FROM known k
  JOIN pg_class c ON c.oid = k.table_id
  LEFT JOIN offload.attachments a ON a.table_id = k.table_id
  LEFT JOIN offload.segments s ON s.table_id = k.table_id AND s.state = 'committed'
 GROUP BY k.table_id, a.policy_name, c.reltuples;

-- Callers see every catalog row, but write only rows about tables (and policies) they own.
GRANT USAGE ON SCHEMA offload TO PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA offload TO PUBLIC;
GRANT INSERT, DELETE ON offload.policies, offload.attachments TO PUBLIC;
GRANT INSERT, UPDATE (run_after) ON offload.jobs TO PUBLIC;
GRANT USAGE ON SEQUENCE offload.jobs_id_seq TO PUBLIC;

CREATE FUNCTION offload.owns_table(rel regclass) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = rel), 'USAGE');

ALTER TABLE offload.policies ENABLE ROW LEVEL SECURITY;
CREATE POLICY read_all ON offload.policies FOR SELECT USING (true);
CREATE POLICY own_insert ON offload.policies FOR INSERT WITH CHECK (owner = current_user);
CREATE POLICY own_delete ON offload.policies FOR DELETE USING (pg_has_role(current_user, owner, 'USAGE'));

ALTER TABLE offload.attachments ENABLE ROW LEVEL SECURITY;
CREATE POLICY read_all ON offload.attachments FOR SELECT USING (true);
CREATE POLICY own_insert ON offload.attachments FOR INSERT WITH CHECK (offload.owns_table(table_id));
CREATE POLICY own_delete ON offload.attachments FOR DELETE USING (offload.owns_table(table_id));

ALTER TABLE offload.jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY read_all ON offload.jobs FOR SELECT USING (true);
CREATE POLICY own_insert ON offload.jobs FOR INSERT WITH CHECK (offload.owns_table(table_id));
CREATE POLICY own_update ON offload.jobs FOR UPDATE USING (offload.owns_table(table_id));
