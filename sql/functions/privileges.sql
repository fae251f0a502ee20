-- Privileges: who may manage offloads, who sees which catalog rows.
--
-- * A table's owner (or a member of the owner role) manages its offloads; so does a member of the
--   cluster role offload_admin, for operators who run offloads for tables they do not own.
--   PostgreSQL's own checks still apply on top: load_back and truncate change the table itself
--   and need the rights PostgreSQL asks for that.
-- * Ordinary users see the catalog rows (attachments, jobs, segments, chunks, layouts, the
--   offload.tables view) of tables they manage only. Policies stay visible to all.
-- * Code a table's owner controls never runs with the bridge's rights: see
--   sql/functions/rewrites.sql and offload.user_hooks() in sql/functions/offload.sql.

CREATE OR REPLACE FUNCTION offload.is_admin() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN pg_has_role(current_user, 'offload_admin', 'USAGE');

CREATE OR REPLACE FUNCTION offload.owns_table(rel regclass) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = rel), 'USAGE')
    OR offload.is_admin();

-- The bridge's role is the offload schema's owner (it installs the schema as it starts). A
-- superuser reaches every table; in the managed profile (README) it must be a member of the
-- table's owner, to make segment tables of its tables and run the owner's conditions as the owner.
-- Refused when the policy is attached, rather than when the first offload fails.
CREATE OR REPLACE FUNCTION offload.check_bridge_reaches(rel regclass) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  bridge oid := (SELECT nspowner FROM pg_namespace WHERE nspname = 'offload');
  owner oid := (SELECT relowner FROM pg_class WHERE oid = rel);
BEGIN
  IF NOT (SELECT rolsuper FROM pg_roles WHERE oid = bridge) AND NOT pg_has_role(bridge, owner, 'USAGE') THEN
    RAISE EXCEPTION 'pg-offload: the bridge''s role % is not a member of %, the owner of table %, so it could not move the table''s rows',
      bridge::regrole, owner::regrole, rel
      USING ERRCODE = 'insufficient_privilege',
            HINT = format('An admin role runs GRANT %s TO %s (README, "On managed PostgreSQL").', owner::regrole, bridge::regrole);
  END IF;
END $$;

-- Checks that pg-offload can serve a table, raising a clear error naming what is wrong. Used at
-- attach time and again before every run. Table arguments of the API are regclass: PostgreSQL
-- resolves the name with the caller's search_path and raises "relation ... does not exist" at the
-- call itself.
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

-- How many tables use a policy, counting those the caller cannot see.
CREATE OR REPLACE FUNCTION offload.policy_attachments(policy text) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
RETURN (SELECT count(*) FROM offload.attachments WHERE policy_name = policy);

CREATE OR REPLACE FUNCTION offload.current_installation() RETURNS text
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

-- Row security of the catalog: ordinary users see the rows (attachments, jobs, segments, chunks,
-- layouts, rewrites) of tables they manage only. Policies stay visible to all: they are shared
-- definitions holding no data, like functions. Re-created on every install, so that this file
-- is their one definition.
DROP POLICY IF EXISTS read_all ON offload.policies;
CREATE POLICY read_all ON offload.policies FOR SELECT USING (true);
DROP POLICY IF EXISTS own_insert ON offload.policies;
CREATE POLICY own_insert ON offload.policies FOR INSERT WITH CHECK (owner = current_user);
DROP POLICY IF EXISTS own_delete ON offload.policies;
CREATE POLICY own_delete ON offload.policies FOR DELETE
  USING (pg_has_role(current_user, owner, 'USAGE') OR offload.is_admin());

DROP POLICY IF EXISTS read_own ON offload.attachments;
CREATE POLICY read_own ON offload.attachments FOR SELECT USING (offload.owns_table(table_id));
DROP POLICY IF EXISTS own_insert ON offload.attachments;
CREATE POLICY own_insert ON offload.attachments FOR INSERT WITH CHECK (offload.owns_table(table_id));
DROP POLICY IF EXISTS own_delete ON offload.attachments;
CREATE POLICY own_delete ON offload.attachments FOR DELETE USING (offload.owns_table(table_id));

DROP POLICY IF EXISTS read_own ON offload.jobs;
CREATE POLICY read_own ON offload.jobs FOR SELECT USING (offload.owns_table(table_id));
DROP POLICY IF EXISTS own_insert ON offload.jobs;
CREATE POLICY own_insert ON offload.jobs FOR INSERT
  WITH CHECK (offload.owns_table(table_id) AND requested_by = current_user);
DROP POLICY IF EXISTS own_update ON offload.jobs;
CREATE POLICY own_update ON offload.jobs FOR UPDATE USING (offload.owns_table(table_id));

DROP POLICY IF EXISTS read_own ON offload.segments;
CREATE POLICY read_own ON offload.segments FOR SELECT USING (offload.owns_table(table_id));
DROP POLICY IF EXISTS read_own ON offload.chunks;
CREATE POLICY read_own ON offload.chunks FOR SELECT
  USING (EXISTS (SELECT FROM offload.segments s WHERE s.id = chunks.segment_id));
DROP POLICY IF EXISTS read_own ON offload.segment_layouts;
CREATE POLICY read_own ON offload.segment_layouts FOR SELECT
  USING (EXISTS (SELECT FROM offload.segments s WHERE s.id = segment_layouts.segment_id));
DROP POLICY IF EXISTS read_own ON offload.rewritten_segments;
CREATE POLICY read_own ON offload.rewritten_segments FOR SELECT
  USING (EXISTS (SELECT FROM offload.segments s WHERE s.id = rewritten_segments.segment_id));
