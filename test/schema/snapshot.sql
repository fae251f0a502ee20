--
-- PostgreSQL database dump
--



SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: offload; Type: SCHEMA; Schema: -; Owner: <installer>
--

CREATE SCHEMA offload;


ALTER SCHEMA offload OWNER TO <installer>;

--
-- Name: file_fdw; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS file_fdw WITH SCHEMA public;


--
-- Name: EXTENSION file_fdw; Type: COMMENT; Schema: -; Owner: 
--

COMMENT ON EXTENSION file_fdw IS 'foreign-data wrapper for flat file access';


--
-- Name: postgres_fdw; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS postgres_fdw WITH SCHEMA public;


--
-- Name: EXTENSION postgres_fdw; Type: COMMENT; Schema: -; Owner: 
--

COMMENT ON EXTENSION postgres_fdw IS 'foreign-data wrapper for remote PostgreSQL servers';


--
-- Name: abort_segment(bigint); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.abort_segment(segment bigint) RETURNS void
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  UPDATE offload.segments SET state = 'aborted' WHERE id = segment AND state = 'pending';
$$;


ALTER FUNCTION offload.abort_segment(segment bigint) OWNER TO <installer>;

--
-- Name: activity_count(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.activity_count(rel regclass) RETURNS bigint
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint
    FROM pg_stat_all_tables
   WHERE relid = rel OR relid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = rel);
$$;


ALTER FUNCTION offload.activity_count(rel regclass) OWNER TO <installer>;

--
-- Name: added_column_value(regclass, smallint, bigint); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.added_column_value(segment_table regclass, col smallint, cold_rows bigint) RETURNS text
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.added_column_value(segment_table regclass, col smallint, cold_rows bigint) OWNER TO <installer>;

--
-- Name: apply_column_changes(bigint, jsonb); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.apply_column_changes(segment bigint, changes jsonb) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.apply_column_changes(segment bigint, changes jsonb) OWNER TO <installer>;

--
-- Name: attach_policy(regclass, text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.attach_policy(table_name regclass, policy text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.attach_policy(table_name regclass, policy text) OWNER TO <installer>;

--
-- Name: begin_segment(bigint, regclass, text, text, text, regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.begin_segment(job bigint, rel regclass, lo text, hi text, store text, part regclass DEFAULT NULL::regclass) RETURNS bigint
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.begin_segment(job bigint, rel regclass, lo text, hi text, store text, part regclass) OWNER TO <installer>;

--
-- Name: bound_segment_tables(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.bound_segment_tables(rel regclass) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.bound_segment_tables(rel regclass) OWNER TO <installer>;

--
-- Name: changed_here(regclass, smallint); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.changed_here(rel regclass, col smallint) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN (SELECT (pg_attribute.xmin = (pg_current_xact_id())::xid) FROM pg_attribute WHERE ((pg_attribute.attrelid = (changed_here.rel)::oid) AND (pg_attribute.attnum = changed_here.col)));


ALTER FUNCTION offload.changed_here(rel regclass, col smallint) OWNER TO <installer>;

--
-- Name: check_assignment_columns(regclass, jsonb); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.check_assignment_columns(rel regclass, assignments jsonb) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  col text;
  protected name[];
BEGIN
  IF jsonb_typeof(assignments) IS DISTINCT FROM 'object' OR assignments = '{}' THEN
    RAISE EXCEPTION 'pg-offload: assignments must be a JSON object of column: SQL expression'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT ARRAY[a.key_column] || p.zone_map_columns INTO protected
    FROM offload.attachments a JOIN offload.policies p ON p.name = a.policy_name WHERE a.table_id = rel;
  protected := coalesce(protected, '{}') ||
               (SELECT coalesce(array_agg(DISTINCT key_column), '{}') FROM offload.segments WHERE table_id = rel);
  FOR col IN SELECT jsonb_object_keys(assignments) LOOP
    IF offload.column_type(rel, col) IS NULL THEN
      RAISE EXCEPTION 'pg-offload: column "%" does not exist in table %', col, rel
        USING ERRCODE = 'undefined_column';
    END IF;
    IF col = ANY (protected) THEN
      RAISE EXCEPTION 'pg-offload: column "%" of table % places rows in segments and cannot be updated in cold rows', col, rel
        USING ERRCODE = 'feature_not_supported', HINT = 'Load the rows back first with offload.load_back().';
    END IF;
    IF jsonb_typeof(assignments -> col) <> 'string' THEN
      RAISE EXCEPTION 'pg-offload: the value for column "%" must be an SQL expression as a JSON string', col
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
  END LOOP;
END $$;


ALTER FUNCTION offload.check_assignment_columns(rel regclass, assignments jsonb) OWNER TO <installer>;

--
-- Name: check_attachment(); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.check_attachment() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.check_attachment() OWNER TO <installer>;

--
-- Name: check_bridge_reaches(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.check_bridge_reaches(rel regclass) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.check_bridge_reaches(rel regclass) OWNER TO <installer>;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: segments; Type: TABLE; Schema: offload; Owner: <installer>
--

CREATE TABLE offload.segments (
    id bigint NOT NULL,
    table_id regclass NOT NULL,
    job_id bigint,
    epoch integer DEFAULT 1 NOT NULL,
    state text DEFAULT 'pending'::text NOT NULL,
    key_column name NOT NULL,
    key_type regtype NOT NULL,
    range_lo text NOT NULL,
    range_hi text NOT NULL,
    columns jsonb NOT NULL,
    encoding name NOT NULL,
    store text NOT NULL,
    segment_table regclass,
    rows bigint,
    raw_bytes bigint,
    stored_bytes bigint,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    committed_at timestamp with time zone,
    partition_name text,
    partition_bound text,
    zone_map jsonb DEFAULT '{}'::jsonb NOT NULL,
    retired_at timestamp with time zone,
    added_columns jsonb DEFAULT '{}'::jsonb NOT NULL,
    seen_columns jsonb,
    seen_oid oid,
    seen_natts integer,
    columns_changed_in xid8,
    merged_into bigint,
    CONSTRAINT segments_state_check CHECK ((state = ANY (ARRAY['pending'::text, 'committed'::text, 'aborted'::text, 'retired'::text])))
);


ALTER TABLE offload.segments OWNER TO <installer>;

--
-- Name: COLUMN segments.columns; Type: COMMENT; Schema: offload; Owner: <installer>
--

COMMENT ON COLUMN offload.segments.columns IS 'The parent''s columns when the segment began; offload.segment_layouts has what each epoch stores.';


--
-- Name: COLUMN segments.merged_into; Type: COMMENT; Schema: offload; Owner: <installer>
--

COMMENT ON COLUMN offload.segments.merged_into IS 'pg-offload: the segment this one was merged into (it is then retired, and its current chunks belong to that segment)';


--
-- Name: check_cold_condition(offload.segments, jsonb, text, smallint[], text, text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.check_cold_condition(s offload.segments, changes jsonb, condition text, cols smallint[], what text, errcode text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
END $_$;


ALTER FUNCTION offload.check_cold_condition(s offload.segments, changes jsonb, condition text, cols smallint[], what text, errcode text) OWNER TO <installer>;

--
-- Name: check_cold_rows(bigint, jsonb); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.check_cold_rows(segment bigint, changes jsonb) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
END $_$;


ALTER FUNCTION offload.check_cold_rows(segment bigint, changes jsonb) OWNER TO <installer>;

--
-- Name: check_expression(regclass, text, text, text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.check_expression(rel regclass, expression text, result_type text, what text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  probe refcursor;
BEGIN
  IF expression IS NULL OR btrim(expression) = '' THEN
    RAISE EXCEPTION 'pg-offload: % is empty', what USING ERRCODE = 'invalid_parameter_value';
  END IF;
  BEGIN
    OPEN probe FOR EXECUTE offload.expression_check_sql(rel, expression, result_type);
    CLOSE probe;
  EXCEPTION WHEN invalid_cursor_definition THEN
    RAISE EXCEPTION 'pg-offload: % must be one SQL expression on the columns of table %', what, rel
      USING ERRCODE = 'syntax_error', DETAIL = format('Given: %s', expression);
  END;
END $$;


ALTER FUNCTION offload.check_expression(rel regclass, expression text, result_type text, what text) OWNER TO <installer>;

--
-- Name: check_partitioned(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.check_partitioned(rel regclass) RETURNS name
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.check_partitioned(rel regclass) OWNER TO <installer>;

--
-- Name: check_policy_columns(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.check_policy_columns(rel regclass) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.check_policy_columns(rel regclass) OWNER TO <installer>;

--
-- Name: check_rewrite_privileges(regclass, name, jsonb); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.check_rewrite_privileges(rel regclass, role name, params jsonb) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  needed text[] := CASE WHEN coalesce((params ->> 'delete')::boolean, false) THEN '{SELECT,DELETE}'
                        WHEN coalesce(params -> 'assignments', '{}') <> '{}' THEN '{SELECT,UPDATE}'
                        ELSE '{SELECT}' END;
BEGIN
  -- One at a time: has_table_privilege() with a list is true when any one is held.
  IF EXISTS (SELECT FROM unnest(needed) p WHERE NOT has_table_privilege(role, rel, p)) THEN
    RAISE EXCEPTION 'pg-offload: role % needs % on table % to change its cold rows', role,
      array_to_string(needed, ' and '), rel
      USING ERRCODE = 'insufficient_privilege';
  END IF;
END $$;


ALTER FUNCTION offload.check_rewrite_privileges(rel regclass, role name, params jsonb) OWNER TO <installer>;

--
-- Name: check_rewrite_target(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.check_rewrite_target(rel regclass) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  IF NOT offload.owns_table(rel) THEN
    RAISE EXCEPTION 'pg-offload: must be owner of table % to change its cold rows', rel
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NOT has_database_privilege(current_user, current_database(), 'TEMPORARY') THEN
    RAISE EXCEPTION 'pg-offload: role % needs the TEMPORARY privilege on database % to change cold rows', current_user, current_database()
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'The bridge evaluates your condition and assignments in temporary functions of your role.';
  END IF;
  IF NOT EXISTS (SELECT FROM offload.segments WHERE table_id = rel AND state = 'committed') THEN
    RAISE EXCEPTION 'pg-offload: table % has no offloaded segments', rel USING ERRCODE = 'undefined_object';
  END IF;
END $$;


ALTER FUNCTION offload.check_rewrite_target(rel regclass) OWNER TO <installer>;

--
-- Name: check_table(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.check_table(rel regclass) RETURNS regclass
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.check_table(rel regclass) OWNER TO <installer>;

--
-- Name: check_type_change(offload.segments, text, jsonb); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.check_type_change(s offload.segments, old_name text, cur jsonb) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.check_type_change(s offload.segments, old_name text, cur jsonb) OWNER TO <installer>;

--
-- Name: chunk_bound_columns(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.chunk_bound_columns(rel regclass) RETURNS TABLE(name name, field integer, decode_as text, collation_name text)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT a.attname, a.field, offload.decode_type(a.atttypid, a.atttypmod),
         offload.qualified_collation(a.attcollation)
    FROM (SELECT attname, atttypid, atttypmod, attcollation,
                 (row_number() OVER (ORDER BY attnum))::int - 1 AS field
            FROM pg_attribute WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped) a
    JOIN offload.attachments t ON t.table_id = rel
    JOIN offload.policies p ON p.name = t.policy_name
   WHERE offload.table_reader(rel) = 'postgres_fdw'
     AND (a.attname = p.time_column OR a.attname = ANY (p.zone_map_columns))
   ORDER BY a.field;
$$;


ALTER FUNCTION offload.chunk_bound_columns(rel regclass) OWNER TO <installer>;

--
-- Name: chunk_stats(bigint, integer, regclass, jsonb); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.chunk_stats(segment bigint, read_epoch integer, segment_table regclass, recorded jsonb) RETURNS TABLE(name name, stats jsonb)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT a.attname, recorded -> (f.ord - 1)::text
    FROM offload.segment_layouts l
    CROSS JOIN LATERAL jsonb_array_elements(l.fields) WITH ORDINALITY AS f(field, ord)
    JOIN pg_attribute a ON a.attrelid = chunk_stats.segment_table AND a.attname = f.field ->> 'name'
                       AND NOT a.attisdropped
                       AND a.atttypid = (f.field ->> 'type')::regtype
                       AND a.atttypmod = (f.field ->> 'typmod')::int
   WHERE l.segment_id = chunk_stats.segment AND l.epoch = read_epoch
     AND recorded ? (f.ord - 1)::text;
$$;


ALTER FUNCTION offload.chunk_stats(segment bigint, read_epoch integer, segment_table regclass, recorded jsonb) OWNER TO <installer>;

--
-- Name: column_changes(bigint); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.column_changes(segment bigint) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.column_changes(segment bigint) OWNER TO <installer>;

--
-- Name: column_fingerprint(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.column_fingerprint(rel regclass) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN (SELECT md5(string_agg(format('%s:%s:%s'::text, pg_attribute.attname, pg_attribute.atttypid, pg_attribute.atttypmod), ','::text ORDER BY pg_attribute.attnum)) AS md5 FROM pg_attribute WHERE ((pg_attribute.attrelid = (column_fingerprint.rel)::oid) AND (pg_attribute.attnum > 0) AND (NOT pg_attribute.attisdropped)));


ALTER FUNCTION offload.column_fingerprint(rel regclass) OWNER TO <installer>;

--
-- Name: column_shape(jsonb); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.column_shape(cols jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN (SELECT COALESCE(jsonb_agg(jsonb_build_object('name', (e.c -> 'name'::text), 'type', (e.c -> 'type'::text), 'typmod', (e.c -> 'typmod'::text)) ORDER BY e.o), '[]'::jsonb) AS "coalesce" FROM jsonb_array_elements(column_shape.cols) WITH ORDINALITY e(c, o));


ALTER FUNCTION offload.column_shape(cols jsonb) OWNER TO <installer>;

--
-- Name: column_type(regclass, text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.column_type(rel regclass, col text) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN (SELECT format_type(pg_attribute.atttypid, pg_attribute.atttypmod) AS format_type FROM pg_attribute WHERE ((pg_attribute.attrelid = (column_type.rel)::oid) AND (pg_attribute.attname = column_type.col) AND (pg_attribute.attnum > 0) AND (NOT pg_attribute.attisdropped)));


ALTER FUNCTION offload.column_type(rel regclass, col text) OWNER TO <installer>;

--
-- Name: commit_segment(bigint, jsonb, text, bigint); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.commit_segment(segment bigint, chunks jsonb, reader_program text, copied_rows bigint) RETURNS regclass
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  s offload.segments%ROWTYPE;
  seg_table regclass;
  deleted bigint;
  heap regclass;
BEGIN
  SELECT * INTO s FROM offload.segments WHERE id = segment FOR UPDATE;
  IF s.state IS DISTINCT FROM 'pending' THEN
    RAISE EXCEPTION 'pg-offload: segment % is %, not pending', segment, coalesce(s.state, 'missing');
  END IF;

  -- A query planned before this commit and executed after it would miss the moved rows (its plan
  -- lacks the new segment table, its snapshot sees them deleted). Only ACCESS EXCLUSIVE waits for
  -- such queries; the caller's lock_timeout bounds the wait, and the job retries on timeout.
  EXECUTE format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', s.table_id);

  heap := s.partition_name::regclass;
  PERFORM offload.record_chunks(segment, s.epoch, chunks);
  s.zone_map := offload.segment_zone_map(segment);  -- in the copy's snapshot: this transaction's
  seg_table := offload.create_segment_table(s, offload.segment_checks(s, copied_rows), reader_program);

  PERFORM offload.set_planner_rows(seg_table, copied_rows);

  IF s.partition_name IS NULL THEN
    deleted := offload.delete_moved_rows(s);
  ELSE
    -- The partition was locked against writes before the copy: it holds exactly what was copied.
    -- By oid: create_segment_table gave its name to the partitioned table that replaced it.
    EXECUTE format('SELECT count(*) FROM ONLY %s', heap) INTO deleted;
    EXECUTE format('DROP TABLE %s', heap);
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
  PERFORM offload.record_layout(segment);
  RETURN seg_table;
END $$;


ALTER FUNCTION offload.commit_segment(segment bigint, chunks jsonb, reader_program text, copied_rows bigint) OWNER TO <installer>;

--
-- Name: copy_text(anyelement); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.copy_text(value anyelement) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET "DateStyle" TO 'ISO, YMD'
    SET "TimeZone" TO 'UTC'
    SET "IntervalStyle" TO 'postgres'
    SET extra_float_digits TO '1'
    SET bytea_output TO 'hex'
    AS $$
  SELECT value::text;
$$;


ALTER FUNCTION offload.copy_text(value anyelement) OWNER TO <installer>;

--
-- Name: create_as_user(name, regclass, jsonb, name, text, text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.create_as_user(role name, rel regclass, settings jsonb, fn name, expression text, result_type text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
  executor name := offload.fresh_function_name('pgo_exec');
  allowed jsonb := (SELECT coalesce(jsonb_object_agg(key, value), '{}') FROM jsonb_each_text(settings)
                     WHERE key IN ('search_path', 'DateStyle', 'TimeZone', 'IntervalStyle'));
BEGIN
  EXECUTE format($f$CREATE FUNCTION pg_temp.%I(settings jsonb, check_sql text, create_sql text)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER %s AS $body$
    DECLARE
      probe refcursor;
    BEGIN
      PERFORM pg_catalog.set_config(key, value, true) FROM pg_catalog.jsonb_each_text(settings);
      OPEN probe FOR EXECUTE check_sql;
      CLOSE probe;
      EXECUTE create_sql;
    END $body$$f$, executor, offload.pinned_settings());
  EXECUTE format('ALTER FUNCTION pg_temp.%I(jsonb, text, text) OWNER TO %I', executor, role);
  EXECUTE format('SELECT pg_temp.%I($1, $2, $3)', executor)
    USING allowed, offload.expression_check_sql(rel, expression, result_type),
          offload.expression_function_sql(fn, rel, expression, result_type);
EXCEPTION WHEN invalid_cursor_definition THEN
  RAISE EXCEPTION 'pg-offload: % is not one SQL expression on the columns of table %', expression, rel
    USING ERRCODE = 'syntax_error';
END $_$;


ALTER FUNCTION offload.create_as_user(role name, rel regclass, settings jsonb, fn name, expression text, result_type text) OWNER TO <installer>;

--
-- Name: create_segment_table(offload.segments, text, text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.create_segment_table(s offload.segments, checks text, reader_program text) RETURNS regclass
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  parent pg_class%ROWTYPE;
  heap pg_class%ROWTYPE;
  seg_name name;
  seg_table regclass;
  holder regclass;
BEGIN
  SELECT * INTO parent FROM pg_class WHERE oid = s.table_id;
  IF s.partition_name IS NULL THEN
    seg_name := offload.segment_table_name(parent.relname, s.id);
    EXECUTE format(
      'CREATE FOREIGN TABLE %s.%I (CONSTRAINT %I CHECK (%s)%s) INHERITS (%s)
         %s',
      parent.relnamespace::regnamespace, seg_name, seg_name || '_range', offload.range_condition(s),
      checks, s.table_id, offload.segment_table_server(s, reader_program));
  ELSE
    SELECT * INTO heap FROM pg_class WHERE oid = s.partition_name::regclass;
    seg_name := offload.segment_table_name(heap.relname, s.id);
    EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', s.table_id, heap.oid::regclass);
    EXECUTE format('ALTER TABLE %s RENAME TO %I', heap.oid::regclass, 'pg_offload_heap_' || s.id);
    EXECUTE format('CREATE TABLE %s.%I PARTITION OF %s %s PARTITION BY %s',
      heap.relnamespace::regnamespace, heap.relname, s.table_id, s.partition_bound,
      pg_get_partkeydef(s.table_id));
    holder := format('%s.%I', heap.relnamespace::regnamespace, heap.relname)::regclass;
    EXECUTE format('ALTER TABLE %s OWNER TO %s', holder, heap.relowner::regrole);
    EXECUTE format(
      'CREATE FOREIGN TABLE %s.%I PARTITION OF %s %s %s
         %s',
      parent.relnamespace::regnamespace, seg_name, holder,
      CASE WHEN checks = '' THEN '' ELSE '(' || substr(checks, 3) || ')' END,
      s.partition_bound, offload.segment_table_server(s, reader_program));
    EXECUTE format('COMMENT ON TABLE %s IS %L', holder,
      format('pg-offload: partition %s of %s, offloaded as segment %s (foreign table %s.%I)',
             s.partition_name, s.table_id, s.id, parent.relnamespace::regnamespace, seg_name));
  END IF;
  seg_table := format('%s.%I', parent.relnamespace::regnamespace, seg_name)::regclass;
  EXECUTE format('ALTER FOREIGN TABLE %s OWNER TO %s', seg_table, parent.relowner::regrole);
  EXECUTE format('COMMENT ON FOREIGN TABLE %s IS %L', seg_table,
    format('pg-offload segment %s of %s: %s, read-only', s.id, s.table_id,
           coalesce('partition ' || s.partition_name || ' ' || s.partition_bound,
                    'rows with ' || offload.range_condition(s))));
  RETURN seg_table;
END $$;


ALTER FUNCTION offload.create_segment_table(s offload.segments, checks text, reader_program text) OWNER TO <installer>;

--
-- Name: current_installation(); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.current_installation() RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.current_installation() OWNER TO <installer>;

--
-- Name: decodable_type(oid); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.decodable_type(typ oid) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  t pg_type%ROWTYPE;
BEGIN
  LOOP
    SELECT * INTO STRICT t FROM pg_type WHERE oid = typ;
    CASE
      WHEN t.typtype = 'd' THEN typ := t.typbasetype;
      WHEN t.typtype = 'c' THEN RETURN false;
      WHEN t.typelem <> 0 AND t.typsubscript = 'array_subscript_handler'::regproc THEN typ := t.typelem;
      WHEN t.typtype = 'r' THEN
        SELECT rngsubtype INTO typ FROM pg_range WHERE rngtypid = t.oid;
        IF (SELECT typtype FROM pg_type WHERE oid = typ) = 'd' THEN RETURN false; END IF;
      WHEN t.typtype = 'm' THEN SELECT rngtypid INTO typ FROM pg_range WHERE rngmultitypid = t.oid;
      ELSE RETURN true;
    END CASE;
  END LOOP;
END $$;


ALTER FUNCTION offload.decodable_type(typ oid) OWNER TO <installer>;

--
-- Name: decode_type(oid, integer); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.decode_type(typ oid, typmod integer) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  t pg_type%ROWTYPE;
BEGIN
  LOOP
    SELECT * INTO STRICT t FROM pg_type WHERE oid = typ;
    EXIT WHEN t.typtype <> 'd';
    typ := t.typbasetype;
    typmod := t.typtypmod;
  END LOOP;
  RETURN format_type(typ, typmod);
END $$;


ALTER FUNCTION offload.decode_type(typ oid, typmod integer) OWNER TO <installer>;

--
-- Name: define_policy(text, text, interval, bigint, interval, bigint, text[], bigint, bigint, integer, text, integer); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.define_policy(name text, time_column text, older_than interval DEFAULT NULL::interval, keep_last bigint DEFAULT NULL::bigint, idle_for interval DEFAULT NULL::interval, keep_hot_bytes bigint DEFAULT NULL::bigint, zone_map_columns text[] DEFAULT '{}'::text[], segment_bytes bigint DEFAULT NULL::bigint, chunk_bytes bigint DEFAULT NULL::bigint, compression_level integer DEFAULT NULL::integer, reader text DEFAULT NULL::text, segment_tables integer DEFAULT NULL::integer) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.define_policy(name text, time_column text, older_than interval, keep_last bigint, idle_for interval, keep_hot_bytes bigint, zone_map_columns text[], segment_bytes bigint, chunk_bytes bigint, compression_level integer, reader text, segment_tables integer) OWNER TO <installer>;

--
-- Name: delete_cold(regclass, text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.delete_cold(table_name regclass, condition text) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  caller jsonb := offload.expression_settings();
BEGIN
  PERFORM offload.check_rewrite_target(table_name);
  PERFORM offload.check_rewrite_privileges(table_name, current_user, '{"delete": true}');
  PERFORM offload.check_expression(table_name, condition, 'boolean', 'the condition');
  RETURN offload.queue_rewrite(table_name, jsonb_build_object('delete', true, 'condition', condition,
                                                              'settings', caller));
END $$;


ALTER FUNCTION offload.delete_cold(table_name regclass, condition text) OWNER TO <installer>;

--
-- Name: delete_moved_rows(offload.segments); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.delete_moved_rows(s offload.segments) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  hooks jsonb := offload.user_hooks(s.table_id, 'replica');
  deleted bigint;
BEGIN
  PERFORM offload.set_user_hooks(s.table_id, hooks, false);
  PERFORM set_config('session_replication_role', 'replica', true);
  EXECUTE format('DELETE FROM ONLY %s WHERE %s', s.table_id, offload.range_condition(s));
  GET DIAGNOSTICS deleted = ROW_COUNT;
  PERFORM set_config('session_replication_role', 'origin', true);
  PERFORM offload.set_user_hooks(s.table_id, hooks, true);
  RETURN deleted;
END $$;


ALTER FUNCTION offload.delete_moved_rows(s offload.segments) OWNER TO <installer>;

--
-- Name: describe(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.describe(table_name regclass) RETURNS TABLE(segment_id bigint, segment_table regclass, state text, epoch integer, current_epoch boolean, range_lo text, range_hi text, partition_name text, seq integer, object_key text, rows bigint, raw_bytes bigint, stored_bytes bigint, crc32c bigint, created_at timestamp with time zone)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT s.id, s.segment_table, s.state, c.epoch, c.epoch = s.epoch, s.range_lo, s.range_hi,
         s.partition_name, c.seq, c.object_key, c.rows, c.raw_bytes, c.stored_bytes, c.crc32c,
         c.created_at
    FROM offload.segments s JOIN offload.chunks c ON c.segment_id = s.id
   WHERE s.table_id = table_name
   ORDER BY s.id, c.epoch, c.seq;
$$;


ALTER FUNCTION offload.describe(table_name regclass) OWNER TO <installer>;

--
-- Name: detach_policy(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.detach_policy(table_name regclass) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.detach_policy(table_name regclass) OWNER TO <installer>;

--
-- Name: drop_policy(text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.drop_policy(name text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.drop_policy(name text) OWNER TO <installer>;

--
-- Name: due_partitions(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.due_partitions(rel regclass) RETURNS TABLE(partition_table regclass, range_lo text, range_hi text)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
END $_$;


ALTER FUNCTION offload.due_partitions(rel regclass) OWNER TO <installer>;

--
-- Name: due_segments(regclass, bigint); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.due_segments(rel regclass, target_bytes bigint) RETURNS TABLE(range_lo text, range_hi text)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
END $_$;


ALTER FUNCTION offload.due_segments(rel regclass, target_bytes bigint) OWNER TO <installer>;

--
-- Name: select_list(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.select_list(rel regclass) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)
    FROM pg_attribute WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped;
$$;


ALTER FUNCTION offload.select_list(rel regclass) OWNER TO <installer>;

--
-- Name: expression_check_sql(regclass, text, text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.expression_check_sql(rel regclass, expression text, result_type text) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN format('SELECT FROM (SELECT %s FROM ONLY %s LIMIT 0) AS pg_offload_row WHERE (
%s
)::%s IS NULL'::text, offload.select_list(rel), rel, expression, result_type);


ALTER FUNCTION offload.expression_check_sql(rel regclass, expression text, result_type text) OWNER TO <installer>;

--
-- Name: row_parameters(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.row_parameters(rel regclass) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN (SELECT string_agg(format('%I %s'::text, pg_attribute.attname, format_type(pg_attribute.atttypid, NULL::integer)), ', '::text ORDER BY pg_attribute.attnum) AS string_agg FROM pg_attribute WHERE ((pg_attribute.attrelid = (row_parameters.rel)::oid) AND (pg_attribute.attnum > 0) AND (NOT pg_attribute.attisdropped)));


ALTER FUNCTION offload.row_parameters(rel regclass) OWNER TO <installer>;

--
-- Name: expression_function_sql(name, regclass, text, text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.expression_function_sql(fn name, rel regclass, expression text, result_type text) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN format(('CREATE FUNCTION pg_temp.%I(%s) RETURNS %s LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT SET DateStyle FROM CURRENT SET TimeZone FROM CURRENT SET IntervalStyle FROM CURRENT RETURN CAST(('::text || '
%s
) AS %s)'::text), fn, offload.row_parameters(rel), result_type, expression, result_type);


ALTER FUNCTION offload.expression_function_sql(fn name, rel regclass, expression text, result_type text) OWNER TO <installer>;

--
-- Name: expression_settings(); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.expression_settings() RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN jsonb_build_object('search_path', current_setting('search_path'::text), 'DateStyle', current_setting('DateStyle'::text), 'TimeZone', current_setting('TimeZone'::text), 'IntervalStyle', current_setting('IntervalStyle'::text));


ALTER FUNCTION offload.expression_settings() OWNER TO <installer>;

--
-- Name: follow_alters(oid[]); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.follow_alters(altered oid[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.follow_alters(altered oid[]) OWNER TO <installer>;

--
-- Name: follow_changes(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.follow_changes(rel regclass) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.follow_changes(rel regclass) OWNER TO <installer>;

--
-- Name: follow_table(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.follow_table(rel regclass) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.follow_table(rel regclass) OWNER TO <installer>;

--
-- Name: followed_column_value(regclass, pg_attribute, bigint); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.followed_column_value(segment_table regclass, a pg_attribute, cold_rows bigint) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.followed_column_value(segment_table regclass, a pg_attribute, cold_rows bigint) OWNER TO <installer>;

--
-- Name: following_changes_of(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.following_changes_of(segment_table regclass) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN (EXISTS (SELECT FROM (offload.segments s JOIN pg_class c ON ((c.oid = (s.table_id)::oid))) WHERE (((s.segment_table)::oid = (following_changes_of.segment_table)::oid) AND (((s.table_id)::oid)::text = current_setting('pg_offload.following_changes'::text, true)) AND (c.relowner = (SELECT pg_roles.oid FROM pg_roles WHERE (pg_roles.rolname = CURRENT_USER))))));


ALTER FUNCTION offload.following_changes_of(segment_table regclass) OWNER TO <installer>;

--
-- Name: follows_alters_itself(); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.follows_alters_itself() RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN (EXISTS (SELECT FROM pg_event_trigger WHERE ((pg_event_trigger.evtname = 'offload_on_alter_table'::name) AND (pg_event_trigger.evtenabled <> 'D'::"char"))));


ALTER FUNCTION offload.follows_alters_itself() OWNER TO <installer>;

--
-- Name: forget_remote_readers(); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.forget_remote_readers() RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  r offload.remote_readers%ROWTYPE;
BEGIN
  FOR r IN SELECT * FROM offload.remote_readers rr
            WHERE NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = rr.table_id) LOOP
    EXECUTE format('DROP SERVER IF EXISTS %I CASCADE', r.server);
    DELETE FROM offload.remote_readers WHERE server = r.server;
  END LOOP;
END $$;


ALTER FUNCTION offload.forget_remote_readers() OWNER TO <installer>;

--
-- Name: fresh_function_name(text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.fresh_function_name(prefix text) RETURNS name
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN ((prefix || '_'::text) || replace((gen_random_uuid())::text, '-'::text, ''::text));


ALTER FUNCTION offload.fresh_function_name(prefix text) OWNER TO <installer>;

--
-- Name: gc_forget(interval, bigint[]); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.gc_forget(grace interval, collected_segments bigint[]) RETURNS void
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  DELETE FROM offload.chunks c USING offload.segments s
   WHERE s.id = c.segment_id AND s.state = 'committed'
     AND c.retired_at IS NOT NULL AND c.retired_at <= now() - grace;
  DELETE FROM offload.segments
   WHERE id = ANY (collected_segments) AND state IN ('aborted', 'retired')
     AND retired_at <= now() - grace;
  DELETE FROM offload.segment_layouts l USING offload.segments s
   WHERE s.id = l.segment_id AND l.epoch <> s.epoch
     AND NOT EXISTS (SELECT FROM offload.chunks c WHERE c.segment_id = l.segment_id AND c.epoch = l.epoch);
  SELECT offload.forget_remote_readers();
$$;


ALTER FUNCTION offload.gc_forget(grace interval, collected_segments bigint[]) OWNER TO <installer>;

--
-- Name: gc_prepare(interval); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.gc_prepare(lease interval) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  PERFORM offload.retire_vanished_segments();
  UPDATE offload.segments s SET state = 'aborted', retired_at = now()
   WHERE s.state = 'pending'
     AND NOT EXISTS (SELECT FROM offload.jobs j WHERE j.id = s.job_id AND j.state = 'running'
                        AND j.heartbeat_at > now() - lease);
  UPDATE offload.segments SET retired_at = coalesce(retired_at, now()) WHERE state = 'aborted';
END $$;


ALTER FUNCTION offload.gc_prepare(lease interval) OWNER TO <installer>;

--
-- Name: gc_segments(interval); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.gc_segments(grace interval) RETURNS TABLE(segment_id bigint, state text, collectable boolean, live_keys text[])
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT s.id, s.state,
         CASE WHEN s.state IN ('aborted', 'retired') THEN s.retired_at <= now() - grace
              WHEN s.state = 'pending' THEN false
              -- A committed segment's unreferenced objects may be a rewrite still uploading.
              ELSE NOT EXISTS (SELECT FROM offload.jobs j WHERE j.table_id = s.table_id
                                  AND j.state IN ('queued', 'running')) END,
         CASE WHEN s.state = 'committed'
              THEN ARRAY(SELECT c.object_key FROM offload.chunks c WHERE c.segment_id = s.id
                          AND (c.retired_at IS NULL OR c.retired_at > now() - grace))
              WHEN s.state = 'pending' OR s.retired_at > now() - grace
              THEN ARRAY(SELECT c.object_key FROM offload.chunks c WHERE c.segment_id = s.id)
              ELSE '{}'::text[] END
    FROM offload.segments s;
$$;


ALTER FUNCTION offload.gc_segments(grace interval) OWNER TO <installer>;

--
-- Name: has_ordering(regclass, name); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.has_ordering(rel regclass, col name) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN (EXISTS (SELECT FROM ((pg_attribute a JOIN pg_opclass o ON ((o.opcintype = a.atttypid))) JOIN pg_am m ON (((m.oid = o.opcmethod) AND (m.amname = 'btree'::name) AND o.opcdefault))) WHERE ((a.attrelid = (has_ordering.rel)::oid) AND (a.attname = has_ordering.col) AND (a.attnum > 0) AND (NOT a.attisdropped))));


ALTER FUNCTION offload.has_ordering(rel regclass, col name) OWNER TO <installer>;

--
-- Name: has_rows(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.has_rows(rel regclass) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  result boolean;
BEGIN
  EXECUTE format('SELECT EXISTS (SELECT FROM ONLY %s)', rel) INTO result;
  RETURN result;
END $$;


ALTER FUNCTION offload.has_rows(rel regclass) OWNER TO <installer>;

--
-- Name: hot_cutoff(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.hot_cutoff(rel regclass) RETURNS text
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.hot_cutoff(rel regclass) OWNER TO <installer>;

--
-- Name: install_event_trigger(text, text, text[], regproc); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.install_event_trigger(name text, event text, tags text[], handler regproc) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  EXECUTE format('DROP EVENT TRIGGER IF EXISTS %I', name);
  EXECUTE format('CREATE EVENT TRIGGER %I ON %I %s EXECUTE FUNCTION %s()', name, event,
                 CASE WHEN tags IS NULL THEN ''
                      ELSE format('WHEN TAG IN (%s)', (SELECT string_agg(quote_literal(t), ', ') FROM unnest(tags) t)) END,
                 handler);
  RETURN true;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'pg-offload: % may not create event triggers: % not installed', current_user, name;
  RETURN false;
END $$;


ALTER FUNCTION offload.install_event_trigger(name text, event text, tags text[], handler regproc) OWNER TO <installer>;

--
-- Name: is_admin(); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.is_admin() RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN pg_has_role(CURRENT_USER, 'offload_admin'::name, 'USAGE'::text);


ALTER FUNCTION offload.is_admin() OWNER TO <installer>;

--
-- Name: is_due(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.is_due(rel regclass) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.is_due(rel regclass) OWNER TO <installer>;

--
-- Name: is_integer_type(regtype); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.is_integer_type(t regtype) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN ((t)::oid = ANY ((ARRAY['smallint'::regtype, 'integer'::regtype, 'bigint'::regtype])::oid[]));


ALTER FUNCTION offload.is_integer_type(t regtype) OWNER TO <installer>;

--
-- Name: is_offloaded_partition(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.is_offloaded_partition(rel regclass) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT EXISTS (SELECT FROM pg_inherits WHERE inhparent = rel)
     AND NOT EXISTS (SELECT FROM pg_inherits i
                      WHERE i.inhparent = rel
                        AND NOT EXISTS (SELECT FROM offload.segments s
                                         WHERE s.segment_table = i.inhrelid AND s.state = 'committed'));
$$;


ALTER FUNCTION offload.is_offloaded_partition(rel regclass) OWNER TO <installer>;

--
-- Name: is_time_type(regtype); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.is_time_type(t regtype) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN ((t)::oid = ANY ((ARRAY['timestamp without time zone'::regtype, 'timestamp with time zone'::regtype, 'date'::regtype])::oid[]));


ALTER FUNCTION offload.is_time_type(t regtype) OWNER TO <installer>;

--
-- Name: key_after(text, regtype); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.key_after(k text, key_type regtype) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.key_after(k text, key_type regtype) OWNER TO <installer>;

--
-- Name: key_at_fraction(regclass, name, double precision); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.key_at_fraction(rel regclass, key_column name, fraction double precision) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  result text;
BEGIN
  EXECUTE format('SELECT (percentile_disc(%L::float8) WITHIN GROUP (ORDER BY %I))::text FROM ONLY %s',
                 greatest(0, least(1, fraction)), key_column, rel)
    INTO result;
  RETURN result;
END $$;


ALTER FUNCTION offload.key_at_fraction(rel regclass, key_column name, fraction double precision) OWNER TO <installer>;

--
-- Name: key_less(text, text, regtype); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.key_less(x text, y text, key_type regtype) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
  result boolean;
BEGIN
  EXECUTE format('SELECT %L::%2$s < %3$L::%2$s', x, key_type, y) INTO result;
  RETURN result;
END $_$;


ALTER FUNCTION offload.key_less(x text, y text, key_type regtype) OWNER TO <installer>;

--
-- Name: live_columns(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.live_columns(rel regclass) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT coalesce(jsonb_agg(jsonb_build_object('attnum', attnum, 'name', attname,
                                               'type', atttypid::regtype::text, 'typmod', atttypmod,
                                               'notnull', attnotnull)
                            ORDER BY attnum), '[]')
    FROM pg_attribute WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped;
$$;


ALTER FUNCTION offload.live_columns(rel regclass) OWNER TO <installer>;

--
-- Name: load_back(regclass, text, text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.load_back(table_name regclass, from_key text DEFAULT NULL::text, to_key text DEFAULT NULL::text) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
    CONTINUE WHEN NOT offload.segment_in_its_table(s);
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
END $_$;


ALTER FUNCTION offload.load_back(table_name regclass, from_key text, to_key text) OWNER TO <installer>;

--
-- Name: load_back_partition(offload.segments, boolean); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.load_back_partition(s offload.segments, with_rows boolean DEFAULT true) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
  holder regclass := offload.offloaded_partition(s.segment_table);
  cold regclass := coalesce(holder, s.segment_table);
  name_parts text[] := parse_ident(s.partition_name);
  part_name text := coalesce((SELECT relname FROM pg_class WHERE oid = holder),
                             name_parts[array_length(name_parts, 1)]);
  nsp regnamespace := (SELECT relnamespace FROM pg_class WHERE oid = cold);
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
  EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', s.table_id, cold);
  IF holder IS NULL THEN
    EXECUTE format('DROP FOREIGN TABLE %s', s.segment_table);
  ELSE
    EXECUTE format('DROP TABLE %s', holder);  -- and the segment table, its partition
  END IF;
  EXECUTE format('ALTER TABLE %s RENAME TO %I', staging, part_name);
  EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s.%I %s', s.table_id, nsp, part_name, s.partition_bound);
  RETURN n;
END $_$;


ALTER FUNCTION offload.load_back_partition(s offload.segments, with_rows boolean) OWNER TO <installer>;

--
-- Name: lock_read_endpoints_shared(); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.lock_read_endpoints_shared() RETURNS void
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT pg_advisory_xact_lock_shared(1885826918, -1);
$$;


ALTER FUNCTION offload.lock_read_endpoints_shared() OWNER TO <installer>;

--
-- Name: lock_segment_for_verify(bigint); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.lock_segment_for_verify(segment bigint) RETURNS void
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT pg_advisory_xact_lock_shared(1885826918, (segment % 2147483648)::int);
$$;


ALTER FUNCTION offload.lock_segment_for_verify(segment bigint) OWNER TO <installer>;

--
-- Name: max_key(regclass, name); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.max_key(rel regclass, key_column name) RETURNS numeric
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  result numeric;
BEGIN
  EXECUTE format('SELECT max(%I)::numeric FROM ONLY %s', key_column, rel) INTO result;
  RETURN result;
END $$;


ALTER FUNCTION offload.max_key(rel regclass, key_column name) OWNER TO <installer>;

--
-- Name: merge_segments(bigint[]); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.merge_segments(ids bigint[]) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.merge_segments(ids bigint[]) OWNER TO <installer>;

--
-- Name: reads_remotely(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.reads_remotely(segment_table regclass) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN (EXISTS (SELECT FROM ((pg_foreign_table ft JOIN pg_foreign_server fs ON ((fs.oid = ft.ftserver))) JOIN pg_foreign_data_wrapper w ON ((w.oid = fs.srvfdw))) WHERE ((ft.ftrelid = (reads_remotely.segment_table)::oid) AND (w.fdwname = 'postgres_fdw'::name))));


ALTER FUNCTION offload.reads_remotely(segment_table regclass) OWNER TO <installer>;

--
-- Name: attachments; Type: TABLE; Schema: offload; Owner: <installer>
--

CREATE TABLE offload.attachments (
    table_id regclass NOT NULL,
    policy_name text NOT NULL,
    key_column name NOT NULL,
    key_type regtype NOT NULL,
    attached_by name DEFAULT CURRENT_USER NOT NULL,
    attached_at timestamp with time zone DEFAULT now() NOT NULL,
    partitioned boolean DEFAULT false NOT NULL,
    activity_count bigint,
    activity_changed_at timestamp with time zone DEFAULT now() NOT NULL
);


ALTER TABLE offload.attachments OWNER TO <installer>;

--
-- Name: policies; Type: TABLE; Schema: offload; Owner: <installer>
--

CREATE TABLE offload.policies (
    name text NOT NULL,
    time_column text NOT NULL,
    older_than interval,
    keep_last bigint,
    owner name DEFAULT CURRENT_USER NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    idle_for interval,
    keep_hot_bytes bigint,
    zone_map_columns name[] DEFAULT '{}'::name[] NOT NULL,
    segment_bytes bigint,
    chunk_bytes bigint,
    compression_level integer,
    reader text,
    segment_tables integer,
    CONSTRAINT policies_chunk_bytes_check CHECK (((chunk_bytes >= 4096) AND (chunk_bytes <= 268435456))),
    CONSTRAINT policies_compression_level_check CHECK (((compression_level >= 0) AND (compression_level <= 22))),
    CONSTRAINT policies_idle_for_check CHECK ((idle_for > '00:00:00'::interval)),
    CONSTRAINT policies_keep_hot_bytes_check CHECK ((keep_hot_bytes >= 0)),
    CONSTRAINT policies_keep_last_check CHECK ((keep_last > 0)),
    CONSTRAINT policies_name_check CHECK ((name <> ''::text)),
    CONSTRAINT policies_older_than_check CHECK ((older_than > '00:00:00'::interval)),
    CONSTRAINT policies_one_rule CHECK ((num_nonnulls(older_than, keep_last, idle_for, keep_hot_bytes) = 1)),
    CONSTRAINT policies_reader_check CHECK ((reader = ANY (ARRAY['file_fdw'::text, 'postgres_fdw'::text]))),
    CONSTRAINT policies_segment_bytes_check CHECK ((segment_bytes >= 65536)),
    CONSTRAINT policies_segment_tables_check CHECK ((segment_tables >= 1)),
    CONSTRAINT policies_time_column_check CHECK ((time_column <> ''::text))
);


ALTER TABLE offload.policies OWNER TO <installer>;

--
-- Name: COLUMN policies.reader; Type: COMMENT; Schema: offload; Owner: <installer>
--

COMMENT ON COLUMN offload.policies.reader IS 'pg-offload: how new segment tables of the tables under this policy read their rows: file_fdw (a program) or postgres_fdw (the bridge as a server); NULL: the database''s pg_offload.reader setting, else file_fdw';


--
-- Name: COLUMN policies.segment_tables; Type: COMMENT; Schema: offload; Owner: <installer>
--

COMMENT ON COLUMN offload.policies.segment_tables IS 'pg-offload: at most this many segment tables per plain table read through postgres_fdw (older segments are merged once there are more); NULL: 4';


--
-- Name: table_reader(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.table_reader(rel regclass) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN COALESCE((SELECT p.reader FROM (offload.attachments a JOIN offload.policies p ON ((p.name = a.policy_name))) WHERE ((a.table_id)::oid = (table_reader.rel)::oid)), CASE WHEN (current_setting('pg_offload.reader'::text, true) = ANY (ARRAY['file_fdw'::text, 'postgres_fdw'::text])) THEN current_setting('pg_offload.reader'::text, true) ELSE NULL::text END, CASE WHEN (EXISTS (SELECT FROM pg_foreign_server WHERE (pg_foreign_server.srvname = 'pg_offload_reader'::name))) THEN 'file_fdw'::text ELSE 'postgres_fdw'::text END);


ALTER FUNCTION offload.table_reader(rel regclass) OWNER TO <installer>;

--
-- Name: segment_layouts; Type: TABLE; Schema: offload; Owner: <installer>
--

CREATE TABLE offload.segment_layouts (
    segment_id bigint NOT NULL,
    epoch integer NOT NULL,
    fields jsonb NOT NULL
);


ALTER TABLE offload.segment_layouts OWNER TO <installer>;

--
-- Name: merge_signature(offload.segments); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.merge_signature(s offload.segments) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN CASE WHEN (((s).state <> 'committed'::text) OR ((s).partition_name IS NOT NULL) OR (NOT offload.reads_remotely((s).segment_table)) OR (offload.table_reader((s).table_id) <> 'postgres_fdw'::text) OR (NOT (EXISTS (SELECT FROM pg_inherits i WHERE ((i.inhrelid = ((merge_signature.s).segment_table)::oid) AND (i.inhparent = ((merge_signature.s).table_id)::oid))))) OR (offload.column_shape(offload.live_columns((s).segment_table)) IS DISTINCT FROM offload.column_shape(offload.live_columns((s).table_id))) OR (offload.column_shape((s).seen_columns) IS DISTINCT FROM offload.column_shape(offload.live_columns((s).segment_table)))) THEN NULL::jsonb ELSE jsonb_build_object('layout', (SELECT l.fields FROM offload.segment_layouts l WHERE ((l.segment_id = (merge_signature.s).id) AND (l.epoch = (merge_signature.s).epoch))), 'added', (s).added_columns, 'key', (s).key_column, 'key_type', ((s).key_type)::text, 'encoding', (s).encoding, 'store', (s).store) END;


ALTER FUNCTION offload.merge_signature(s offload.segments) OWNER TO <installer>;

--
-- Name: merged_zone_map(regclass, bigint[]); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.merged_zone_map(rel regclass, ids bigint[]) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
END $_$;


ALTER FUNCTION offload.merged_zone_map(rel regclass, ids bigint[]) OWNER TO <installer>;

--
-- Name: observe_activity(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.observe_activity(rel regclass) RETURNS interval
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.observe_activity(rel regclass) OWNER TO <installer>;

--
-- Name: offloaded_partition(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.offloaded_partition(segment_table regclass) RETURNS regclass
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT i.inhparent::regclass FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent
   WHERE i.inhrelid = segment_table AND c.relkind = 'p' AND c.relispartition;
$$;


ALTER FUNCTION offload.offloaded_partition(segment_table regclass) OWNER TO <installer>;

--
-- Name: on_alter_table(); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.on_alter_table() RETURNS event_trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  PERFORM offload.follow_alters((SELECT array_agg(DISTINCT objid) FROM pg_event_trigger_ddl_commands()
                                  WHERE classid = 'pg_class'::regclass));
END $$;


ALTER FUNCTION offload.on_alter_table() OWNER TO <installer>;

--
-- Name: on_alter_table_start(); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.on_alter_table_start() RETURNS event_trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  PERFORM offload.resync_restored_segments();
END $$;


ALTER FUNCTION offload.on_alter_table_start() OWNER TO <installer>;

--
-- Name: on_sql_drop(); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.on_sql_drop() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  IF EXISTS (SELECT FROM pg_event_trigger_dropped_objects()
              WHERE object_type IN ('table', 'foreign table')) THEN
    PERFORM offload.retire_vanished_segments();
  END IF;
END $$;


ALTER FUNCTION offload.on_sql_drop() OWNER TO <installer>;

--
-- Name: owns_table(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.owns_table(rel regclass) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN (pg_has_role(CURRENT_USER, (SELECT pg_class.relowner FROM pg_class WHERE (pg_class.oid = (owns_table.rel)::oid)), 'USAGE'::text) OR offload.is_admin());


ALTER FUNCTION offload.owns_table(rel regclass) OWNER TO <installer>;

--
-- Name: partition_lower_bound(regclass, regtype); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.partition_lower_bound(part regclass, key_type regtype) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.partition_lower_bound(part regclass, key_type regtype) OWNER TO <installer>;

--
-- Name: partition_upper_bound(regclass, regtype); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.partition_upper_bound(part regclass, key_type regtype) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
END $_$;


ALTER FUNCTION offload.partition_upper_bound(part regclass, key_type regtype) OWNER TO <installer>;

--
-- Name: pinned_settings(); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.pinned_settings() RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN 'SET search_path = pg_catalog, pg_temp SET DateStyle = ''ISO, YMD'' SET TimeZone = ''UTC'' SET IntervalStyle = postgres SET extra_float_digits = 1 SET bytea_output = hex'::text;


ALTER FUNCTION offload.pinned_settings() OWNER TO <installer>;

--
-- Name: plan_offload(regclass, bigint); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.plan_offload(rel regclass, default_segment_bytes bigint) RETURNS TABLE(partition_table regclass, range_lo text, range_hi text)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.plan_offload(rel regclass, default_segment_bytes bigint) OWNER TO <installer>;

--
-- Name: point_remote_servers(); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.point_remote_servers() RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  hosts text;
  ports text;
  ssl text;
  r offload.remote_readers%ROWTYPE;
  changed int := 0;
BEGIN
  SELECT string_agg(e.target -> 'sql' ->> 'host', ',' ORDER BY e.endpoint),
         string_agg(e.target -> 'sql' ->> 'port', ',' ORDER BY e.endpoint),
         -- TLS required once every endpoint offers it; until then libpq's default (prefer).
         CASE WHEN bool_and(coalesce((e.target -> 'sql' ->> 'tls')::boolean, false)) THEN 'require' ELSE 'prefer' END
    INTO hosts, ports, ssl
    FROM offload.read_endpoints e WHERE e.target ? 'sql';
  IF hosts IS NULL THEN
    RETURN 0;
  END IF;
  FOR r IN SELECT * FROM offload.remote_readers LOOP
    IF NOT EXISTS (SELECT FROM pg_foreign_server fs WHERE fs.srvname = r.server
                      AND fs.srvoptions @> ARRAY['host=' || hosts, 'port=' || ports, 'sslmode=' || ssl]) THEN
      EXECUTE format('ALTER SERVER %I OPTIONS (SET host %L, SET port %L, SET sslmode %L)',
                     r.server, hosts, ports, ssl);
      changed := changed + 1;
    END IF;
  END LOOP;
  RETURN changed;
END $$;


ALTER FUNCTION offload.point_remote_servers() OWNER TO <installer>;

--
-- Name: point_segment_table(regclass, bigint, integer, text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.point_segment_table(segment_table regclass, segment bigint, epoch integer, program text) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  wanted text;
BEGIN
  wanted := CASE WHEN offload.reads_remotely(segment_table)
                 THEN 'table_name=' || offload.remote_relation_name(segment, epoch)
                 ELSE 'program=' || program END;
  IF EXISTS (SELECT FROM pg_foreign_table WHERE ftrelid = segment_table AND ftoptions @> ARRAY[wanted]) THEN
    RETURN false;
  END IF;
  EXECUTE format('ALTER FOREIGN TABLE %s OPTIONS (SET %s %L)', segment_table,
                 split_part(wanted, '=', 1), substr(wanted, strpos(wanted, '=') + 1));
  RETURN true;
END $$;


ALTER FUNCTION offload.point_segment_table(segment_table regclass, segment bigint, epoch integer, program text) OWNER TO <installer>;

--
-- Name: policy_attachments(text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.policy_attachments(policy text) RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN (SELECT count(*) AS count FROM offload.attachments WHERE (attachments.policy_name = policy_attachments.policy));


ALTER FUNCTION offload.policy_attachments(policy text) OWNER TO <installer>;

--
-- Name: preview(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.preview(table_name regclass) RETURNS TABLE(partition_table regclass, range_lo text, range_hi text, rows bigint, heap_bytes bigint)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.preview(table_name regclass) OWNER TO <installer>;

--
-- Name: qualified_collation(oid); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.qualified_collation(coll oid) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN (SELECT format('%I.%I'::text, n.nspname, c.collname) AS format FROM (pg_collation c JOIN pg_namespace n ON ((n.oid = c.collnamespace))) WHERE (c.oid = qualified_collation.coll));


ALTER FUNCTION offload.qualified_collation(coll oid) OWNER TO <installer>;

--
-- Name: queue_rewrite(regclass, jsonb); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.queue_rewrite(rel regclass, params jsonb) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  job_id bigint;
BEGIN
  INSERT INTO offload.jobs (table_id, kind, params) VALUES (rel, 'rewrite', params)
  ON CONFLICT (table_id) WHERE state IN ('queued', 'running') DO NOTHING
  RETURNING id INTO job_id;
  IF job_id IS NULL THEN
    RAISE EXCEPTION 'pg-offload: job % is already queued or running for table %; try again when it has finished',
      (SELECT id FROM offload.jobs WHERE table_id = rel AND state IN ('queued', 'running')), rel
      USING ERRCODE = 'lock_not_available';
  END IF;
  PERFORM pg_notify('offload_jobs', job_id::text);
  RETURN job_id;
END $$;


ALTER FUNCTION offload.queue_rewrite(rel regclass, params jsonb) OWNER TO <installer>;

--
-- Name: range_condition(offload.segments); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.range_condition(s offload.segments) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN format('%1$I >= %2$L::%4$s AND %1$I < %3$L::%4$s'::text, (s).key_column, (s).range_lo, (s).range_hi, (s).key_type);


ALTER FUNCTION offload.range_condition(s offload.segments) OWNER TO <installer>;

--
-- Name: reads_as(regtype, integer, regtype, integer); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.reads_as(from_type regtype, from_mod integer, to_type regtype, to_mod integer) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.reads_as(from_type regtype, from_mod integer, to_type regtype, to_mod integer) OWNER TO <installer>;

--
-- Name: record_chunks(bigint, integer, jsonb); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.record_chunks(segment bigint, segment_epoch integer, chunks jsonb) RETURNS void
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  INSERT INTO offload.chunks (segment_id, epoch, seq, object_key, rows, raw_bytes, stored_bytes,
                              crc32c, codec, key_id, bounds)
  SELECT segment, segment_epoch, c.seq, c.object_key, c.rows, c.raw_bytes, c.stored_bytes, c.crc32c,
         c.codec, c.key_id, c.bounds
    FROM jsonb_to_recordset(chunks) AS c(seq int, object_key text, rows bigint, raw_bytes bigint,
                                         stored_bytes bigint, crc32c bigint, codec text, key_id text,
                                         bounds jsonb);
$$;


ALTER FUNCTION offload.record_chunks(segment bigint, segment_epoch integer, chunks jsonb) OWNER TO <installer>;

--
-- Name: record_layout(bigint); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.record_layout(segment bigint) RETURNS void
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.record_layout(segment bigint) OWNER TO <installer>;

--
-- Name: recorded_missing_value(regclass, name); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.recorded_missing_value(rel regclass, col_name name) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.recorded_missing_value(rel regclass, col_name name) OWNER TO <installer>;

--
-- Name: refuse_older_migration(); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.refuse_older_migration() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  newest offload.migrations;
BEGIN
  SELECT * INTO newest FROM offload.migrations ORDER BY version DESC LIMIT 1;
  IF newest.version > NEW.version THEN
    RAISE EXCEPTION 'pg-offload: this database''s schema is newer than the installer (it has migration %, the installer wanted to add %)',
        newest.name, NEW.name
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Run the pg-offload release that installed it, or a newer one.';
  END IF;
  RETURN NEW;
END $$;


ALTER FUNCTION offload.refuse_older_migration() OWNER TO <installer>;

--
-- Name: refuse_unfollowed_changes(bigint); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.refuse_unfollowed_changes(segment bigint) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
END $_$;


ALTER FUNCTION offload.refuse_unfollowed_changes(segment bigint) OWNER TO <installer>;

--
-- Name: refuse_unseen_change(regclass, smallint); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.refuse_unseen_change(rel regclass, col smallint) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  IF NOT offload.changed_here(rel, col) AND NOT offload.following_changes_of(rel) THEN
    RAISE EXCEPTION 'pg-offload: column "%" of segment table % changed in an earlier transaction that pg-offload did not see (through a parent table?)',
      (SELECT attname FROM pg_attribute WHERE attrelid = rel AND attnum = col), rel
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Bring the offloaded rows back with offload.load_back(), then alter the table.';
  END IF;
END $$;


ALTER FUNCTION offload.refuse_unseen_change(rel regclass, col smallint) OWNER TO <installer>;

--
-- Name: register_read_endpoint(text, jsonb, text, interval); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.register_read_endpoint(endpoint text, target jsonb, worker text, stale_after interval) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  here text := offload.current_installation();
BEGIN
  PERFORM pg_advisory_xact_lock(1885826918, -1);
  DELETE FROM offload.read_endpoints e
   WHERE e.installation <> here
      OR (e.seen_at < now() - stale_after AND e.endpoint <> register_read_endpoint.endpoint);
  INSERT INTO offload.read_endpoints AS e (endpoint, installation, target, worker_id)
  VALUES (register_read_endpoint.endpoint, here, register_read_endpoint.target, worker)
  ON CONFLICT ON CONSTRAINT read_endpoints_pkey DO UPDATE
    SET installation = excluded.installation, target = excluded.target,
        worker_id = excluded.worker_id,
        started_at = now(), seen_at = now();
END $$;


ALTER FUNCTION offload.register_read_endpoint(endpoint text, target jsonb, worker text, stale_after interval) OWNER TO <installer>;

--
-- Name: remember_columns(bigint); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.remember_columns(segment bigint) RETURNS void
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  UPDATE offload.segments s
     SET seen_columns = offload.live_columns(s.segment_table), seen_oid = s.segment_table,
         seen_natts = (SELECT relnatts FROM pg_class WHERE oid = s.segment_table)
   WHERE s.id = segment;
$$;


ALTER FUNCTION offload.remember_columns(segment bigint) OWNER TO <installer>;

--
-- Name: remote_reader_login(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.remote_reader_login(rel regclass) RETURNS text
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  r offload.remote_readers%ROWTYPE;
  n bigint;
BEGIN
  IF offload.table_reader(rel) <> 'postgres_fdw' THEN
    RETURN NULL;
  END IF;
  SELECT * INTO r FROM offload.remote_readers WHERE table_id = rel;
  IF FOUND THEN
    RETURN r.login;
  END IF;
  PERFORM pg_advisory_xact_lock(1885826918, -3);  -- two bridges offloading one table at once
  SELECT * INTO r FROM offload.remote_readers WHERE table_id = rel;
  IF FOUND THEN
    RETURN r.login;
  END IF;
  n := nextval('offload.remote_reader_ids');
  r := ROW(rel, 'pg_offload_remote_' || n, 'pg_offload_table_' || n);
  -- Where the bridges' SQL endpoints are is set by offload.point_remote_servers (below).
  EXECUTE format('CREATE SERVER %I FOREIGN DATA WRAPPER postgres_fdw OPTIONS (%s)', r.server,
                 offload.remote_server_options());
  EXECUTE format('COMMENT ON SERVER %I IS %L', r.server,
                 format('pg-offload: the bridges'' SQL endpoints, reading the cold rows of %s', rel));
  INSERT INTO offload.remote_readers VALUES (r.*);
  PERFORM offload.point_remote_servers();
  RETURN r.login;
END $$;


ALTER FUNCTION offload.remote_reader_login(rel regclass) OWNER TO <installer>;

--
-- Name: remote_reader_table(text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.remote_reader_table(login text) RETURNS TABLE(table_oid oid, table_name text)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT r.table_id::oid, r.table_id::text FROM offload.remote_readers r WHERE r.login = remote_reader_table.login;
$$;


ALTER FUNCTION offload.remote_reader_table(login text) OWNER TO <installer>;

--
-- Name: remote_relation_name(bigint, integer); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.remote_relation_name(segment bigint, epoch integer) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN format('segment_%s_epoch_%s'::text, segment, epoch);


ALTER FUNCTION offload.remote_relation_name(segment bigint, epoch integer) OWNER TO <installer>;

--
-- Name: remote_segment_head(bigint, integer); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.remote_segment_head(segment bigint, read_epoch integer) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  -- On every scan, kept shape or not (the managed profile: an ALTER not followed yet).
  PERFORM offload.refuse_unfollowed_changes(segment);
  RETURN (SELECT jsonb_build_object(
    'table_oid', s.table_id::oid, 'table', s.table_id::text, 'state', s.state,
    'epoch_exists', n.chunks > 0 OR (s.epoch = read_epoch AND s.rows = 0),
    'from_store', offload.segment_being_verified(segment),
    'columns', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                  'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
                  'decodeAs', offload.decode_type(a.atttypid, a.atttypmod),
                  'collation', offload.qualified_collation(a.attcollation),
                  'decodable', offload.decodable_type(a.atttypid)) ORDER BY a.attnum), '[]')
                  FROM pg_attribute a WHERE a.attrelid = s.segment_table AND a.attnum > 0 AND NOT a.attisdropped),
    'version', md5(jsonb_build_array(
                 s.segment_table::oid, s.added_columns, n.chunks, l.fields,
                 (SELECT jsonb_agg(to_regtype(f.field ->> 'type')::oid ORDER BY f.ord)
                    FROM jsonb_array_elements(l.fields) WITH ORDINALITY AS f(field, ord)),
                 (SELECT jsonb_agg(jsonb_build_array(a.attnum, a.attname, a.atttypid, a.atttypmod,
                                                     a.attcollation, a.attisdropped, a.xmin::text)
                                   ORDER BY a.attnum)
                    FROM pg_attribute a WHERE a.attrelid = s.segment_table AND a.attnum > 0))::text))
    FROM offload.segments s
    CROSS JOIN LATERAL (SELECT count(*) AS chunks FROM offload.chunks c
                         WHERE c.segment_id = s.id AND c.epoch = read_epoch) n
    LEFT JOIN offload.segment_layouts l ON l.segment_id = s.id AND l.epoch = read_epoch
    WHERE s.id = segment);
END $$;


ALTER FUNCTION offload.remote_segment_head(segment bigint, read_epoch integer) OWNER TO <installer>;

--
-- Name: remote_segment_shape(bigint, integer); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.remote_segment_shape(segment bigint, read_epoch integer) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  RETURN (SELECT offload.remote_segment_head(segment, read_epoch) || jsonb_build_object(
    'read_plan', offload.segment_read_plan(segment, read_epoch),
    'chunks', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                 'seq', c.seq, 'object_key', c.object_key, 'rows', c.rows, 'raw_bytes', c.raw_bytes,
                 'stored_bytes', c.stored_bytes,
                 'bounds', st.bounds, 'nulls', st.nulls)
                 ORDER BY c.seq), '[]')
                 FROM offload.chunks c
                 -- Each chunk's statistics mapped to today's names once, split in two here.
                 CROSS JOIN LATERAL (
                   SELECT jsonb_object_agg(b.name, jsonb_build_array(b.stats -> 0, b.stats -> 1))
                            FILTER (WHERE b.stats ->> 0 IS NOT NULL) AS bounds,
                          jsonb_object_agg(b.name, b.stats -> 2) AS nulls
                     FROM offload.chunk_stats(s.id, read_epoch, s.segment_table, c.bounds) b) st
                WHERE c.segment_id = s.id AND c.epoch = read_epoch))
    FROM offload.segments s WHERE s.id = segment);
END $$;


ALTER FUNCTION offload.remote_segment_shape(segment bigint, read_epoch integer) OWNER TO <installer>;

--
-- Name: remote_server_options(); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.remote_server_options() RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN concat_ws(', '::text, 'dbname ''pg-offload''', 'host ''localhost''', 'port ''1''', 'sslmode ''prefer''', 'fetch_size ''1000''', 'updatable ''false''', 'truncatable ''false''', CASE WHEN ((current_setting('server_version_num'::text))::integer >= 160000) THEN 'analyze_sampling ''off'''::text ELSE NULL::text END);


ALTER FUNCTION offload.remote_server_options() OWNER TO <installer>;

--
-- Name: repoint_segment(bigint, integer, text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.repoint_segment(segment bigint, expected_epoch integer, program text) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  seg_table regclass;
  seg_name text;
BEGIN
  SELECT s.segment_table INTO seg_table FROM offload.segments s
   WHERE s.id = segment AND s.state = 'committed' AND s.epoch = expected_epoch;
  IF seg_table IS NULL OR offload.reads_remotely(seg_table)  -- its relation name holds no endpoint
     OR EXISTS (SELECT FROM pg_foreign_table ft WHERE ft.ftrelid = seg_table
                                     AND ft.ftoptions @> ARRAY['program=' || program]) THEN
    RETURN false;
  END IF;
  -- By name: a table dropped meanwhile then fails as undefined_table.
  SELECT format('%I.%I', n.nspname, c.relname) INTO seg_name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = seg_table;
  IF seg_name IS NULL THEN
    RETURN false;
  END IF;
  BEGIN
    EXECUTE format('ALTER FOREIGN TABLE %s OPTIONS (SET program %L)', seg_name, program);
    IF NOT EXISTS (SELECT FROM offload.segments s
                    WHERE s.id = segment AND s.state = 'committed' AND s.epoch = expected_epoch
                      AND s.segment_table = seg_table) THEN
      RAISE EXCEPTION 'pg-offload: segment % changed while it was repointed', segment
        USING ERRCODE = 'PGO01';
    END IF;
  EXCEPTION WHEN undefined_table OR SQLSTATE 'PGO01' THEN
    RETURN false;  -- loaded back, dropped or rewritten meanwhile: what it is now stands
  END;
  RETURN true;
END $$;


ALTER FUNCTION offload.repoint_segment(segment bigint, expected_epoch integer, program text) OWNER TO <installer>;

--
-- Name: restore_row_estimates(); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.restore_row_estimates() RETURNS bigint
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT count(*) FILTER (WHERE offload.set_planner_rows(s.segment_table, s.rows))
    FROM offload.segments s JOIN pg_class c ON c.oid = s.segment_table
   WHERE s.state = 'committed' AND c.reltuples <> s.rows;
$$;


ALTER FUNCTION offload.restore_row_estimates() OWNER TO <installer>;

--
-- Name: resync_restored_segments(); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.resync_restored_segments() RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.resync_restored_segments() OWNER TO <installer>;

--
-- Name: retire_vanished_segments(); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.retire_vanished_segments() RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  retired bigint;
BEGIN
  UPDATE offload.segments s SET state = 'retired', retired_at = now()
   WHERE s.state = 'committed'
     AND NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = s.segment_table);
  GET DIAGNOSTICS retired = ROW_COUNT;
  DELETE FROM offload.attachments a WHERE NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = a.table_id);
  RETURN retired;
END $$;


ALTER FUNCTION offload.retire_vanished_segments() OWNER TO <installer>;

--
-- Name: retyped_added_value(regclass, regclass, text, text, regtype, integer, regtype, integer); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.retyped_added_value(table_id regclass, segment_table regclass, col_name text, value text, old_type regtype, old_mod integer, new_type regtype, new_mod integer) RETURNS text
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.retyped_added_value(table_id regclass, segment_table regclass, col_name text, value text, old_type regtype, old_mod integer, new_type regtype, new_mod integer) OWNER TO <installer>;

--
-- Name: rewrite_cold(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.rewrite_cold(table_name regclass) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  PERFORM offload.check_rewrite_target(table_name);
  RETURN offload.queue_rewrite(table_name,
    jsonb_build_object('delete', false, 'condition', 'true', 'assignments', '{}'::jsonb));
END $$;


ALTER FUNCTION offload.rewrite_cold(table_name regclass) OWNER TO <installer>;

--
-- Name: rewrite_step(bigint, jsonb, name, text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.rewrite_step(segment bigint, params jsonb, requested_by name, step text) RETURNS text
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  s offload.segments%ROWTYPE;
  settings jsonb := coalesce(params -> 'settings', '{}');
  assignments jsonb := coalesce(params -> 'assignments', '{}');
  is_delete boolean := coalesce((params ->> 'delete')::boolean, false);
  cond name := offload.fresh_function_name('pgo_cond');
  wrapper name := offload.fresh_function_name('pgo_' || step);
  args text;
  col record;
  select_list text := '';
  body text;
  returns text := CASE WHEN step = 'count' THEN 'bigint' END;
BEGIN
  SELECT * INTO s FROM offload.segments WHERE id = segment;
  IF s.state IS DISTINCT FROM 'committed' THEN
    RAISE EXCEPTION 'pg-offload: segment % is %, not committed', segment, coalesce(s.state, 'missing')
      USING ERRCODE = 'serialization_failure';
  END IF;
  PERFORM offload.check_rewrite_privileges(s.table_id, requested_by, params);
  args := offload.row_arguments(s.table_id);
  -- The new rows have the table's own row type.
  returns := coalesce(returns, format('SETOF %s', (SELECT reltype::regtype FROM pg_class WHERE oid = s.table_id)));
  PERFORM offload.create_as_user(requested_by, s.table_id, settings, cond,
                                 coalesce(params ->> 'condition', 'true'), 'boolean');
  IF step = 'count' THEN
    body := format('SELECT count(*) FROM ONLY %s AS s WHERE pg_temp.%I(%s) IS TRUE',
                   s.segment_table, cond, args);
  ELSIF is_delete THEN
    body := format('SELECT %s FROM ONLY %s AS s WHERE pg_temp.%I(%s) IS NOT TRUE',
                   args, s.segment_table, cond, args);
  ELSE
    IF assignments <> '{}' THEN
      PERFORM offload.check_assignment_columns(s.table_id, assignments);
    END IF;
    FOR col IN SELECT attname, format_type(atttypid, atttypmod) AS type, format_type(atttypid, NULL) AS base_type,
                      offload.fresh_function_name('pgo_set') AS fn
                 FROM pg_attribute WHERE attrelid = s.table_id AND attnum > 0 AND NOT attisdropped
                ORDER BY attnum LOOP
      IF assignments ? col.attname THEN
        PERFORM offload.create_as_user(requested_by, s.table_id, settings, col.fn,
                                       assignments ->> col.attname, col.base_type);
        select_list := select_list || format(', CASE WHEN m.hit THEN CAST(pg_temp.%I(%s) AS %s) ELSE s.%I END',
                                             col.fn, args, col.type, col.attname);
      ELSE
        select_list := select_list || format(', s.%I', col.attname);
      END IF;
    END LOOP;
    body := format('SELECT %s FROM ONLY %s AS s CROSS JOIN LATERAL (SELECT pg_temp.%I(%s) IS TRUE) AS m(hit)',
                   substr(select_list, 3), s.segment_table, cond, args);
  END IF;
  EXECUTE format('CREATE FUNCTION pg_temp.%I() RETURNS %s LANGUAGE sql SECURITY DEFINER %s AS %L',
                 wrapper, returns, offload.pinned_settings(), body);
  -- The segment is read as the table's owner: a domain's CHECK on a column is the owner's code,
  -- and runs with the owner's rights whoever asked (the asker's expressions run as the asker).
  EXECUTE format('ALTER FUNCTION pg_temp.%I() OWNER TO %s', wrapper,
                 (SELECT relowner::regrole FROM pg_class WHERE oid = s.table_id));
  RETURN CASE WHEN step = 'count' THEN format('SELECT pg_temp.%I() AS count', wrapper)
              ELSE format('COPY (SELECT * FROM pg_temp.%I()) TO STDOUT', wrapper) END;
END $$;


ALTER FUNCTION offload.rewrite_step(segment bigint, params jsonb, requested_by name, step text) OWNER TO <installer>;

--
-- Name: row_arguments(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.row_arguments(rel regclass) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN (SELECT string_agg(format('s.%I'::text, pg_attribute.attname), ', '::text ORDER BY pg_attribute.attnum) AS string_agg FROM pg_attribute WHERE ((pg_attribute.attrelid = (row_arguments.rel)::oid) AND (pg_attribute.attnum > 0) AND (NOT pg_attribute.attisdropped)));


ALTER FUNCTION offload.row_arguments(rel regclass) OWNER TO <installer>;

--
-- Name: run(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.run(table_name regclass) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.run(table_name regclass) OWNER TO <installer>;

--
-- Name: segment_being_verified(bigint); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.segment_being_verified(segment bigint) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT EXISTS (SELECT FROM pg_locks l
                  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                    AND l.classid = 1885826918 AND l.objid = (segment % 2147483648)::oid);
$$;


ALTER FUNCTION offload.segment_being_verified(segment bigint) OWNER TO <installer>;

--
-- Name: segment_checks(offload.segments, bigint); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.segment_checks(s offload.segments, copied_rows bigint) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  checks text := '';
  zone record;
BEGIN
  IF copied_rows = 0 THEN
    SELECT format(', CONSTRAINT %I CHECK (%s)', 'offloaded_' || s.id || '_empty',
                  string_agg(format('%I IS NULL', c), ' AND '))
      INTO checks
      FROM unnest(ARRAY[s.key_column] || (SELECT p.zone_map_columns FROM offload.attachments a
             JOIN offload.policies p ON p.name = a.policy_name WHERE a.table_id = s.table_id)) c;
  END IF;
  FOR zone IN SELECT key, value->>0 AS lo, value->>1 AS hi FROM jsonb_each(s.zone_map) LOOP
    checks := checks || format(', CONSTRAINT %I CHECK (%I >= %L::%s AND %I <= %L::%s)',
      left(zone.key, 40) || '_zone_' || s.id, zone.key, zone.lo,
      (SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = s.table_id AND attname = zone.key),
      zone.key, zone.hi,
      (SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = s.table_id AND attname = zone.key));
  END LOOP;
  RETURN checks;
END $$;


ALTER FUNCTION offload.segment_checks(s offload.segments, copied_rows bigint) OWNER TO <installer>;

--
-- Name: segment_copy_statement(bigint); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.segment_copy_statement(segment bigint) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT CASE WHEN s.partition_name IS NULL
    THEN format('COPY (SELECT %s FROM ONLY %s WHERE %s) TO STDOUT',
                offload.select_list(s.table_id), s.table_id, offload.range_condition(s))
    ELSE format('COPY (SELECT %s FROM ONLY %s) TO STDOUT',
                offload.select_list(s.table_id), s.partition_name::regclass)
  END
    FROM offload.segments s WHERE s.id = segment;
$$;


ALTER FUNCTION offload.segment_copy_statement(segment bigint) OWNER TO <installer>;

--
-- Name: segment_in_its_table(offload.segments); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.segment_in_its_table(s offload.segments) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT s.partition_name IS NULL
      OR EXISTS (SELECT FROM pg_inherits
                  WHERE inhrelid = coalesce(offload.offloaded_partition(s.segment_table), s.segment_table)
                    AND inhparent = s.table_id);
$$;


ALTER FUNCTION offload.segment_in_its_table(s offload.segments) OWNER TO <installer>;

--
-- Name: segment_lock_statement(bigint); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.segment_lock_statement(segment bigint) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT CASE WHEN s.partition_name IS NULL
              THEN format('LOCK TABLE ONLY %s IN ACCESS SHARE MODE', s.table_id)
              ELSE format('LOCK TABLE ONLY %s IN SHARE MODE', s.partition_name::regclass) END
    FROM offload.segments s WHERE s.id = segment;
$$;


ALTER FUNCTION offload.segment_lock_statement(segment bigint) OWNER TO <installer>;

--
-- Name: segment_merge_groups(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.segment_merge_groups(rel regclass) RETURNS SETOF bigint[]
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.segment_merge_groups(rel regclass) OWNER TO <installer>;

--
-- Name: segment_overlaps(offload.segments, text, text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.segment_overlaps(s offload.segments, from_key text, to_key text) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
  result boolean;
BEGIN
  EXECUTE format('SELECT (%1$L IS NULL OR %2$L = ''MINVALUE'' OR %2$L::%5$s < %1$L::%5$s)
                     AND (%3$L IS NULL OR %4$L::%5$s > %3$L::%5$s)',
                 to_key, s.range_lo, from_key, s.range_hi, s.key_type)
    INTO result;
  RETURN result;
END $_$;


ALTER FUNCTION offload.segment_overlaps(s offload.segments, from_key text, to_key text) OWNER TO <installer>;

--
-- Name: segment_read_plan(bigint, integer); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.segment_read_plan(segment bigint, read_epoch integer) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


ALTER FUNCTION offload.segment_read_plan(segment bigint, read_epoch integer) OWNER TO <installer>;

--
-- Name: segment_table_bound(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.segment_table_bound(rel regclass) RETURNS integer
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
END $_$;


ALTER FUNCTION offload.segment_table_bound(rel regclass) OWNER TO <installer>;

--
-- Name: segment_table_name(name, bigint); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.segment_table_name(parent name, segment bigint) RETURNS name
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  suffix text := '__offloaded_' || segment;
  base text := parent;
BEGIN
  WHILE octet_length(base || suffix) > 63 LOOP
    base := left(base, -1);
  END LOOP;
  RETURN base || suffix;
END $$;


ALTER FUNCTION offload.segment_table_name(parent name, segment bigint) OWNER TO <installer>;

--
-- Name: segment_table_server(offload.segments, text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.segment_table_server(s offload.segments, reader_program text) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  remote name;
BEGIN
  IF offload.table_reader(s.table_id) = 'postgres_fdw' THEN
    SELECT r.server INTO remote FROM offload.remote_readers r WHERE r.table_id = s.table_id;
    IF remote IS NULL THEN
      RAISE EXCEPTION 'pg-offload: table % has no remote reader server yet', s.table_id
        USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN format('SERVER %I OPTIONS (schema_name %L, table_name %L)', remote, 'pg_offload',
                  offload.remote_relation_name(s.id, s.epoch));
  END IF;
  RETURN format('SERVER pg_offload_reader OPTIONS (program %L, format %L, encoding %L)',
                reader_program, 'text', s.encoding);
END $$;


ALTER FUNCTION offload.segment_table_server(s offload.segments, reader_program text) OWNER TO <installer>;

--
-- Name: segment_zone_map(bigint); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.segment_zone_map(segment bigint) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
END $_$;


ALTER FUNCTION offload.segment_zone_map(segment bigint) OWNER TO <installer>;

--
-- Name: set_planner_rows(regclass, bigint); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.set_planner_rows(segment_table regclass, row_count bigint) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  IF current_setting('server_version_num')::int >= 180000 THEN
    IF NOT has_table_privilege(segment_table, 'MAINTAIN') THEN
      RETURN false;
    END IF;
    RETURN pg_restore_relation_stats(
      'schemaname', (SELECT nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE c.oid = segment_table),
      'relname', (SELECT relname::text FROM pg_class WHERE oid = segment_table),
      'relpages', 10, 'reltuples', row_count::real);
  END IF;
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    RETURN false;
  END IF;
  UPDATE pg_class SET reltuples = row_count, relpages = 10 WHERE oid = segment_table;
  RETURN true;
END $$;


ALTER FUNCTION offload.set_planner_rows(segment_table regclass, row_count bigint) OWNER TO <installer>;

--
-- Name: set_remote_reader_password(regclass, text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.set_remote_reader_password(rel regclass, password text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  r offload.remote_readers%ROWTYPE;
BEGIN
  SELECT * INTO STRICT r FROM offload.remote_readers WHERE table_id = rel;
  IF EXISTS (SELECT FROM pg_user_mappings m WHERE m.srvname = r.server AND m.usename = 'public'
                AND m.umoptions @> ARRAY['user=' || r.login, 'password=' || password]) THEN
    RETURN;
  END IF;
  IF EXISTS (SELECT FROM pg_user_mappings m WHERE m.srvname = r.server AND m.usename = 'public') THEN
    EXECUTE format('DROP USER MAPPING FOR PUBLIC SERVER %I', r.server);
  END IF;
  EXECUTE format('CREATE USER MAPPING FOR PUBLIC SERVER %I OPTIONS (user %L, password %L)',
                 r.server, r.login, password);
END $$;


ALTER FUNCTION offload.set_remote_reader_password(rel regclass, password text) OWNER TO <installer>;

--
-- Name: set_user_hooks(regclass, jsonb, boolean); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.set_user_hooks(rel regclass, hooks jsonb, enabled boolean) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  h jsonb;
BEGIN
  FOR h IN SELECT jsonb_array_elements(hooks) LOOP
    EXECUTE format('ALTER TABLE ONLY %s %s %s %I', rel,
                   CASE WHEN NOT enabled THEN 'DISABLE'
                        WHEN h ->> 'mode' = 'A' THEN 'ENABLE ALWAYS'
                        WHEN h ->> 'mode' = 'R' THEN 'ENABLE REPLICA'
                        ELSE 'ENABLE' END,
                   h ->> 'kind', h ->> 'name');
  END LOOP;
END $$;


ALTER FUNCTION offload.set_user_hooks(rel regclass, hooks jsonb, enabled boolean) OWNER TO <installer>;

--
-- Name: sortable_key(text, regtype); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.sortable_key(k text, key_type regtype) RETURNS numeric
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN CASE WHEN ((k IS NULL) OR (k = 'MINVALUE'::text)) THEN NULL::numeric WHEN offload.is_integer_type(key_type) THEN (k)::numeric ELSE EXTRACT(epoch FROM (k)::timestamp with time zone) END;


ALTER FUNCTION offload.sortable_key(k text, key_type regtype) OWNER TO <installer>;

--
-- Name: swap_rewritten_segment(bigint, bigint, integer, jsonb, text, bigint, bigint, text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.swap_rewritten_segment(job bigint, segment bigint, new_epoch integer, chunks jsonb, reader_program text, new_rows bigint, matched bigint, fingerprint text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  rel regclass := (SELECT table_id FROM offload.segments WHERE id = segment);
BEGIN
  EXECUTE format('LOCK TABLE ONLY %s IN ACCESS SHARE MODE', rel);
  IF offload.column_fingerprint(rel) IS DISTINCT FROM fingerprint THEN
    RAISE EXCEPTION 'pg-offload: the columns of table % changed while segment % was rewritten', rel, segment
      USING ERRCODE = 'serialization_failure';
  END IF;
  INSERT INTO offload.rewritten_segments (job_id, segment_id, epoch, matched_rows)
  VALUES (job, segment, new_epoch, matched);
  PERFORM offload.swap_segment_epoch(segment, new_epoch, chunks, reader_program, new_rows);
END $$;


ALTER FUNCTION offload.swap_rewritten_segment(job bigint, segment bigint, new_epoch integer, chunks jsonb, reader_program text, new_rows bigint, matched bigint, fingerprint text) OWNER TO <installer>;

--
-- Name: swap_segment_epoch(bigint, integer, jsonb, text, bigint); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.swap_segment_epoch(segment bigint, new_epoch integer, chunks jsonb, reader_program text, new_rows bigint) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  s offload.segments%ROWTYPE;
BEGIN
  SELECT * INTO s FROM offload.segments WHERE id = segment FOR UPDATE;
  IF s.state IS DISTINCT FROM 'committed' OR new_epoch <> s.epoch + 1 THEN
    RAISE EXCEPTION 'pg-offload: segment % changed while it was rewritten (now % at epoch %)', segment, s.state, s.epoch
      USING ERRCODE = 'serialization_failure';
  END IF;
  PERFORM offload.record_chunks(segment, new_epoch, chunks);
  UPDATE offload.chunks SET retired_at = now() WHERE segment_id = segment AND epoch = s.epoch;
  PERFORM offload.point_segment_table(s.segment_table, segment, new_epoch, reader_program);
  PERFORM offload.set_planner_rows(s.segment_table, new_rows);
  UPDATE offload.segments
     SET epoch = new_epoch, rows = new_rows,
         raw_bytes = (SELECT coalesce(sum(c.raw_bytes), 0) FROM offload.chunks c WHERE c.segment_id = segment AND c.epoch = new_epoch),
         stored_bytes = (SELECT coalesce(sum(c.stored_bytes), 0) FROM offload.chunks c WHERE c.segment_id = segment AND c.epoch = new_epoch)
   WHERE id = segment;
  PERFORM offload.record_layout(segment);
END $$;


ALTER FUNCTION offload.swap_segment_epoch(segment bigint, new_epoch integer, chunks jsonb, reader_program text, new_rows bigint) OWNER TO <installer>;

--
-- Name: truncate(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.truncate(table_name regclass) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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
    CONTINUE WHEN NOT offload.segment_in_its_table(s);
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


ALTER FUNCTION offload.truncate(table_name regclass) OWNER TO <installer>;

--
-- Name: update_cold(regclass, jsonb, text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.update_cold(table_name regclass, assignments jsonb, condition text) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  caller jsonb := offload.expression_settings();
  col text;
BEGIN
  PERFORM offload.check_rewrite_target(table_name);
  PERFORM offload.check_assignment_columns(table_name, assignments);
  PERFORM offload.check_rewrite_privileges(table_name, current_user,
                                           jsonb_build_object('assignments', assignments));
  PERFORM offload.check_expression(table_name, condition, 'boolean', 'the condition');
  FOR col IN SELECT jsonb_object_keys(assignments) LOOP
    PERFORM offload.check_expression(table_name, assignments ->> col, offload.column_type(table_name, col),
                                     format('the value for column "%s"', col));
  END LOOP;
  RETURN offload.queue_rewrite(table_name,
    jsonb_build_object('delete', false, 'condition', condition, 'assignments', assignments,
                       'settings', caller));
END $$;


ALTER FUNCTION offload.update_cold(table_name regclass, assignments jsonb, condition text) OWNER TO <installer>;

--
-- Name: user_hooks(regclass, text); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.user_hooks(rel regclass, replication_role text) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    RETURN (SELECT COALESCE(jsonb_agg(jsonb_build_object('kind', h.kind, 'name', h.name, 'mode', h.mode)), '[]'::jsonb) AS "coalesce" FROM (SELECT 'TRIGGER'::text AS kind, pg_trigger.tgname AS name, pg_trigger.tgenabled AS mode FROM pg_trigger WHERE ((pg_trigger.tgrelid = (user_hooks.rel)::oid) AND (NOT pg_trigger.tgisinternal)) UNION ALL SELECT 'RULE'::text, pg_rewrite.rulename, pg_rewrite.ev_enabled FROM pg_rewrite WHERE ((pg_rewrite.ev_class = (user_hooks.rel)::oid) AND (pg_rewrite.rulename <> '_RETURN'::name))) h WHERE ((h.mode = 'A'::"char") OR ((h.mode)::text = CASE user_hooks.replication_role WHEN 'replica'::text THEN 'R'::text ELSE 'O'::text END)));


ALTER FUNCTION offload.user_hooks(rel regclass, replication_role text) OWNER TO <installer>;

--
-- Name: verify(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.verify(table_name regclass) RETURNS TABLE(segment_id bigint, segment_table regclass, chunks bigint, rows_expected bigint, rows_read bigint, ok boolean, problem text)
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT v.* FROM offload.segments s, offload.verify_segment(s.id) v
   WHERE s.table_id = table_name AND s.state = 'committed'
   ORDER BY s.id;
$$;


ALTER FUNCTION offload.verify(table_name regclass) OWNER TO <installer>;

--
-- Name: verify_segment(bigint); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.verify_segment(segment bigint) RETURNS TABLE(segment_id bigint, segment_table regclass, chunks bigint, rows_expected bigint, rows_read bigint, ok boolean, problem text)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  s offload.segments%ROWTYPE;
  context text;
BEGIN
  SELECT * INTO s FROM offload.segments WHERE id = segment AND state = 'committed';
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pg-offload: no committed segment %', segment USING ERRCODE = 'undefined_object';
  END IF;
  segment_id := s.id;
  segment_table := s.segment_table;
  rows_expected := s.rows;
  SELECT count(*) INTO chunks FROM offload.chunks c WHERE c.segment_id = s.id AND c.epoch = s.epoch;
  PERFORM offload.lock_segment_for_verify(s.id);
  BEGIN
    EXECUTE format('SELECT count(*) FROM %s', s.segment_table) INTO rows_read;
    IF rows_read <> rows_expected THEN
      problem := format('read %s rows, the index says %s', rows_read, rows_expected);
    END IF;
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS context = PG_EXCEPTION_CONTEXT;
    -- The reader's own message travels in the CONTEXT line of the COPY error.
    problem := SQLERRM || coalesce(': ' || substring(context FROM 'COPY [^\n]*'), '');
  END;
  ok := problem IS NULL;
  RETURN NEXT;
END $$;


ALTER FUNCTION offload.verify_segment(segment bigint) OWNER TO <installer>;

--
-- Name: write_settings(regclass); Type: FUNCTION; Schema: offload; Owner: <installer>
--

CREATE FUNCTION offload.write_settings(rel regclass) RETURNS TABLE(chunk_bytes bigint, compression_level integer)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT p.chunk_bytes, p.compression_level
    FROM offload.attachments a JOIN offload.policies p ON p.name = a.policy_name
   WHERE a.table_id = rel;
$$;


ALTER FUNCTION offload.write_settings(rel regclass) OWNER TO <installer>;

--
-- Name: pg_offload_reader; Type: SERVER; Schema: -; Owner: <installer>
--

CREATE SERVER pg_offload_reader FOREIGN DATA WRAPPER file_fdw;


ALTER SERVER pg_offload_reader OWNER TO <installer>;

--
-- Name: chunks; Type: TABLE; Schema: offload; Owner: <installer>
--

CREATE TABLE offload.chunks (
    segment_id bigint NOT NULL,
    epoch integer NOT NULL,
    seq integer NOT NULL,
    object_key text NOT NULL,
    rows bigint NOT NULL,
    raw_bytes bigint NOT NULL,
    stored_bytes bigint NOT NULL,
    crc32c bigint NOT NULL,
    codec text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    retired_at timestamp with time zone,
    key_id text,
    bounds jsonb,
    CONSTRAINT chunks_key_id_check CHECK ((key_id ~ '^[0-9a-f]{8}$'::text))
);


ALTER TABLE offload.chunks OWNER TO <installer>;

--
-- Name: COLUMN chunks.key_id; Type: COMMENT; Schema: offload; Owner: <installer>
--

COMMENT ON COLUMN offload.chunks.key_id IS 'pg-offload: id of the key the chunk is encrypted with (see the README, Encryption); NULL: not encrypted';


--
-- Name: installation; Type: TABLE; Schema: offload; Owner: <installer>
--

CREATE TABLE offload.installation (
    id text DEFAULT substr(md5(((random())::text || (clock_timestamp())::text)), 1, 12) NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    system_identifier numeric,
    database_oid oid,
    superseded_at timestamp with time zone
);


ALTER TABLE offload.installation OWNER TO <installer>;

--
-- Name: jobs; Type: TABLE; Schema: offload; Owner: <installer>
--

CREATE TABLE offload.jobs (
    id bigint NOT NULL,
    table_id regclass NOT NULL,
    kind text DEFAULT 'offload'::text NOT NULL,
    state text DEFAULT 'queued'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    run_after timestamp with time zone DEFAULT now() NOT NULL,
    locked_by text,
    locked_at timestamp with time zone,
    heartbeat_at timestamp with time zone,
    segments_total integer,
    segments_done integer DEFAULT 0 NOT NULL,
    rows_done bigint DEFAULT 0 NOT NULL,
    bytes_done bigint DEFAULT 0 NOT NULL,
    last_error text,
    requested_by name DEFAULT CURRENT_USER NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    params jsonb DEFAULT '{}'::jsonb NOT NULL,
    retries integer DEFAULT 0 NOT NULL,
    base_segments integer DEFAULT 0 NOT NULL,
    base_rows bigint DEFAULT 0 NOT NULL,
    base_bytes bigint DEFAULT 0 NOT NULL,
    kept_segments integer DEFAULT 0 NOT NULL,
    kept_rows bigint DEFAULT 0 NOT NULL,
    kept_bytes bigint DEFAULT 0 NOT NULL,
    CONSTRAINT jobs_kind_check CHECK ((kind = ANY (ARRAY['offload'::text, 'rewrite'::text]))),
    CONSTRAINT jobs_state_check CHECK ((state = ANY (ARRAY['queued'::text, 'running'::text, 'succeeded'::text, 'failed'::text])))
);


ALTER TABLE offload.jobs OWNER TO <installer>;

--
-- Name: COLUMN jobs.attempts; Type: COMMENT; Schema: offload; Owner: <installer>
--

COMMENT ON COLUMN offload.jobs.attempts IS 'Attempts used of the bridge''s limit (PGOFFLOAD_MAX_ATTEMPTS), the running one included; never more than the limit.';


--
-- Name: COLUMN jobs.retries; Type: COMMENT; Schema: offload; Owner: <installer>
--

COMMENT ON COLUMN offload.jobs.retries IS 'Runs retried without using an attempt: cut short by a serialization failure, deadlock or lock timeout, or by the loss of their bridge.';


--
-- Name: jobs_id_seq; Type: SEQUENCE; Schema: offload; Owner: <installer>
--

CREATE SEQUENCE offload.jobs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


ALTER TABLE offload.jobs_id_seq OWNER TO <installer>;

--
-- Name: jobs_id_seq; Type: SEQUENCE OWNED BY; Schema: offload; Owner: <installer>
--

ALTER SEQUENCE offload.jobs_id_seq OWNED BY offload.jobs.id;


--
-- Name: migrations; Type: TABLE; Schema: offload; Owner: <installer>
--

CREATE TABLE offload.migrations (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);


ALTER TABLE offload.migrations OWNER TO <installer>;

--
-- Name: read_endpoints; Type: TABLE; Schema: offload; Owner: <installer>
--

CREATE TABLE offload.read_endpoints (
    endpoint text NOT NULL,
    installation text NOT NULL,
    target jsonb NOT NULL,
    worker_id text NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    seen_at timestamp with time zone DEFAULT now() NOT NULL
);


ALTER TABLE offload.read_endpoints OWNER TO <installer>;

--
-- Name: remote_reader_ids; Type: SEQUENCE; Schema: offload; Owner: <installer>
--

CREATE SEQUENCE offload.remote_reader_ids
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


ALTER TABLE offload.remote_reader_ids OWNER TO <installer>;

--
-- Name: remote_readers; Type: TABLE; Schema: offload; Owner: <installer>
--

CREATE TABLE offload.remote_readers (
    table_id regclass NOT NULL,
    server name NOT NULL,
    login text NOT NULL
);


ALTER TABLE offload.remote_readers OWNER TO <installer>;

--
-- Name: TABLE remote_readers; Type: COMMENT; Schema: offload; Owner: <installer>
--

COMMENT ON TABLE offload.remote_readers IS 'pg-offload: the postgres_fdw server and bridge login of each table read through the bridge''s SQL endpoint';


--
-- Name: rewritten_segments; Type: TABLE; Schema: offload; Owner: <installer>
--

CREATE TABLE offload.rewritten_segments (
    job_id bigint NOT NULL,
    segment_id bigint NOT NULL,
    epoch integer NOT NULL,
    matched_rows bigint NOT NULL
);


ALTER TABLE offload.rewritten_segments OWNER TO <installer>;

--
-- Name: TABLE rewritten_segments; Type: COMMENT; Schema: offload; Owner: <installer>
--

COMMENT ON TABLE offload.rewritten_segments IS 'pg-offload: segments each rewrite job has swapped to a new epoch, so that a retry never changes them twice';


--
-- Name: schema_release; Type: TABLE; Schema: offload; Owner: <installer>
--

CREATE TABLE offload.schema_release (
    one boolean DEFAULT true NOT NULL,
    release text NOT NULL,
    functions_digest text NOT NULL,
    installed_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT schema_release_one_check CHECK (one)
);


ALTER TABLE offload.schema_release OWNER TO <installer>;

--
-- Name: segments_id_seq; Type: SEQUENCE; Schema: offload; Owner: <installer>
--

CREATE SEQUENCE offload.segments_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


ALTER TABLE offload.segments_id_seq OWNER TO <installer>;

--
-- Name: segments_id_seq; Type: SEQUENCE OWNED BY; Schema: offload; Owner: <installer>
--

ALTER SEQUENCE offload.segments_id_seq OWNED BY offload.segments.id;


--
-- Name: tables; Type: VIEW; Schema: offload; Owner: <installer>
--

CREATE VIEW offload.tables WITH (security_invoker='true') AS
 WITH known AS (
         SELECT attachments.table_id
           FROM offload.attachments
          WHERE offload.owns_table(attachments.table_id)
        UNION
         SELECT segments.table_id
           FROM offload.segments
          WHERE ((segments.state = 'committed'::text) AND offload.owns_table(segments.table_id))
        ), hot AS (
         SELECT k_1.table_id,
                CASE
                    WHEN (c.relkind <> 'p'::"char") THEN
                    CASE
                        WHEN (c.reltuples >= (0)::double precision) THEN (c.reltuples)::bigint
                        ELSE NULL::bigint
                    END
                    ELSE ( SELECT (sum(p.reltuples) FILTER (WHERE (p.reltuples >= (0)::double precision)))::bigint AS sum
                       FROM (pg_partition_tree(k_1.table_id) t(relid, parentrelid, isleaf, level)
                         JOIN pg_class p ON ((p.oid = (t.relid)::oid)))
                      WHERE (t.isleaf AND (p.relkind = 'r'::"char")))
                END AS hot_rows_estimate,
                CASE
                    WHEN (c.relkind <> 'p'::"char") THEN pg_table_size(k_1.table_id)
                    ELSE ( SELECT (COALESCE(sum(pg_table_size(t.relid)), (0)::numeric))::bigint AS "coalesce"
                       FROM (pg_partition_tree(k_1.table_id) t(relid, parentrelid, isleaf, level)
                         JOIN pg_class p ON ((p.oid = (t.relid)::oid)))
                      WHERE (t.isleaf AND (p.relkind = 'r'::"char")))
                END AS hot_bytes
           FROM (known k_1
             JOIN pg_class c ON ((c.oid = (k_1.table_id)::oid)))
        )
 SELECT k.table_id AS table_name,
    a.policy_name AS policy,
    h.hot_rows_estimate,
    h.hot_bytes,
    count(s.id) AS cold_segments,
    (COALESCE(sum(s.rows), (0)::numeric))::bigint AS cold_rows,
    (COALESCE(sum(s.raw_bytes), (0)::numeric))::bigint AS cold_raw_bytes,
    (COALESCE(sum(s.stored_bytes), (0)::numeric))::bigint AS cold_stored_bytes,
    max(s.committed_at) AS last_offload_at
   FROM (((known k
     JOIN hot h ON (((h.table_id)::oid = (k.table_id)::oid)))
     LEFT JOIN offload.attachments a ON (((a.table_id)::oid = (k.table_id)::oid)))
     LEFT JOIN offload.segments s ON ((((s.table_id)::oid = (k.table_id)::oid) AND (s.state = 'committed'::text))))
  GROUP BY k.table_id, a.policy_name, h.hot_rows_estimate, h.hot_bytes;


ALTER TABLE offload.tables OWNER TO <installer>;

--
-- Name: jobs id; Type: DEFAULT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.jobs ALTER COLUMN id SET DEFAULT nextval('offload.jobs_id_seq'::regclass);


--
-- Name: segments id; Type: DEFAULT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.segments ALTER COLUMN id SET DEFAULT nextval('offload.segments_id_seq'::regclass);


--
-- Name: attachments attachments_pkey; Type: CONSTRAINT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.attachments
    ADD CONSTRAINT attachments_pkey PRIMARY KEY (table_id);


--
-- Name: chunks chunks_object_key_key; Type: CONSTRAINT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.chunks
    ADD CONSTRAINT chunks_object_key_key UNIQUE (object_key);


--
-- Name: chunks chunks_pkey; Type: CONSTRAINT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.chunks
    ADD CONSTRAINT chunks_pkey PRIMARY KEY (segment_id, epoch, seq);


--
-- Name: installation installation_pkey; Type: CONSTRAINT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.installation
    ADD CONSTRAINT installation_pkey PRIMARY KEY (id);


--
-- Name: jobs jobs_pkey; Type: CONSTRAINT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);


--
-- Name: migrations migrations_pkey; Type: CONSTRAINT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.migrations
    ADD CONSTRAINT migrations_pkey PRIMARY KEY (version);


--
-- Name: policies policies_pkey; Type: CONSTRAINT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.policies
    ADD CONSTRAINT policies_pkey PRIMARY KEY (name);


--
-- Name: read_endpoints read_endpoints_pkey; Type: CONSTRAINT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.read_endpoints
    ADD CONSTRAINT read_endpoints_pkey PRIMARY KEY (endpoint);


--
-- Name: remote_readers remote_readers_login_key; Type: CONSTRAINT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.remote_readers
    ADD CONSTRAINT remote_readers_login_key UNIQUE (login);


--
-- Name: remote_readers remote_readers_pkey; Type: CONSTRAINT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.remote_readers
    ADD CONSTRAINT remote_readers_pkey PRIMARY KEY (table_id);


--
-- Name: remote_readers remote_readers_server_key; Type: CONSTRAINT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.remote_readers
    ADD CONSTRAINT remote_readers_server_key UNIQUE (server);


--
-- Name: rewritten_segments rewritten_segments_pkey; Type: CONSTRAINT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.rewritten_segments
    ADD CONSTRAINT rewritten_segments_pkey PRIMARY KEY (job_id, segment_id);


--
-- Name: schema_release schema_release_pkey; Type: CONSTRAINT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.schema_release
    ADD CONSTRAINT schema_release_pkey PRIMARY KEY (one);


--
-- Name: segment_layouts segment_layouts_pkey; Type: CONSTRAINT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.segment_layouts
    ADD CONSTRAINT segment_layouts_pkey PRIMARY KEY (segment_id, epoch);


--
-- Name: segments segments_pkey; Type: CONSTRAINT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.segments
    ADD CONSTRAINT segments_pkey PRIMARY KEY (id);


--
-- Name: jobs_claimable; Type: INDEX; Schema: offload; Owner: <installer>
--

CREATE INDEX jobs_claimable ON offload.jobs USING btree (run_after) WHERE (state = 'queued'::text);


--
-- Name: jobs_one_live_per_table; Type: INDEX; Schema: offload; Owner: <installer>
--

CREATE UNIQUE INDEX jobs_one_live_per_table ON offload.jobs USING btree (table_id) WHERE (state = ANY (ARRAY['queued'::text, 'running'::text]));


--
-- Name: segments_by_table; Type: INDEX; Schema: offload; Owner: <installer>
--

CREATE INDEX segments_by_table ON offload.segments USING btree (table_id);


--
-- Name: attachments check_attachment; Type: TRIGGER; Schema: offload; Owner: <installer>
--

CREATE TRIGGER check_attachment BEFORE INSERT OR UPDATE OF table_id, policy_name, key_column, key_type, partitioned ON offload.attachments FOR EACH ROW EXECUTE FUNCTION offload.check_attachment();


--
-- Name: migrations refuse_older_migration; Type: TRIGGER; Schema: offload; Owner: <installer>
--

CREATE TRIGGER refuse_older_migration BEFORE INSERT ON offload.migrations FOR EACH ROW EXECUTE FUNCTION offload.refuse_older_migration();


--
-- Name: attachments attachments_policy_name_fkey; Type: FK CONSTRAINT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.attachments
    ADD CONSTRAINT attachments_policy_name_fkey FOREIGN KEY (policy_name) REFERENCES offload.policies(name);


--
-- Name: chunks chunks_segment_id_fkey; Type: FK CONSTRAINT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.chunks
    ADD CONSTRAINT chunks_segment_id_fkey FOREIGN KEY (segment_id) REFERENCES offload.segments(id) ON DELETE CASCADE;


--
-- Name: rewritten_segments rewritten_segments_job_id_fkey; Type: FK CONSTRAINT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.rewritten_segments
    ADD CONSTRAINT rewritten_segments_job_id_fkey FOREIGN KEY (job_id) REFERENCES offload.jobs(id) ON DELETE CASCADE;


--
-- Name: rewritten_segments rewritten_segments_segment_id_fkey; Type: FK CONSTRAINT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.rewritten_segments
    ADD CONSTRAINT rewritten_segments_segment_id_fkey FOREIGN KEY (segment_id) REFERENCES offload.segments(id) ON DELETE CASCADE;


--
-- Name: segment_layouts segment_layouts_segment_id_fkey; Type: FK CONSTRAINT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.segment_layouts
    ADD CONSTRAINT segment_layouts_segment_id_fkey FOREIGN KEY (segment_id) REFERENCES offload.segments(id) ON DELETE CASCADE;


--
-- Name: segments segments_job_id_fkey; Type: FK CONSTRAINT; Schema: offload; Owner: <installer>
--

ALTER TABLE ONLY offload.segments
    ADD CONSTRAINT segments_job_id_fkey FOREIGN KEY (job_id) REFERENCES offload.jobs(id) ON DELETE SET NULL;


--
-- Name: attachments; Type: ROW SECURITY; Schema: offload; Owner: <installer>
--

ALTER TABLE offload.attachments ENABLE ROW LEVEL SECURITY;

--
-- Name: chunks; Type: ROW SECURITY; Schema: offload; Owner: <installer>
--

ALTER TABLE offload.chunks ENABLE ROW LEVEL SECURITY;

--
-- Name: jobs; Type: ROW SECURITY; Schema: offload; Owner: <installer>
--

ALTER TABLE offload.jobs ENABLE ROW LEVEL SECURITY;

--
-- Name: attachments own_delete; Type: POLICY; Schema: offload; Owner: <installer>
--

CREATE POLICY own_delete ON offload.attachments FOR DELETE USING (offload.owns_table(table_id));


--
-- Name: policies own_delete; Type: POLICY; Schema: offload; Owner: <installer>
--

CREATE POLICY own_delete ON offload.policies FOR DELETE USING ((pg_has_role(CURRENT_USER, owner, 'USAGE'::text) OR offload.is_admin()));


--
-- Name: attachments own_insert; Type: POLICY; Schema: offload; Owner: <installer>
--

CREATE POLICY own_insert ON offload.attachments FOR INSERT WITH CHECK (offload.owns_table(table_id));


--
-- Name: jobs own_insert; Type: POLICY; Schema: offload; Owner: <installer>
--

CREATE POLICY own_insert ON offload.jobs FOR INSERT WITH CHECK ((offload.owns_table(table_id) AND (requested_by = CURRENT_USER)));


--
-- Name: policies own_insert; Type: POLICY; Schema: offload; Owner: <installer>
--

CREATE POLICY own_insert ON offload.policies FOR INSERT WITH CHECK ((owner = CURRENT_USER));


--
-- Name: jobs own_update; Type: POLICY; Schema: offload; Owner: <installer>
--

CREATE POLICY own_update ON offload.jobs FOR UPDATE USING (offload.owns_table(table_id));


--
-- Name: policies; Type: ROW SECURITY; Schema: offload; Owner: <installer>
--

ALTER TABLE offload.policies ENABLE ROW LEVEL SECURITY;

--
-- Name: policies read_all; Type: POLICY; Schema: offload; Owner: <installer>
--

CREATE POLICY read_all ON offload.policies FOR SELECT USING (true);


--
-- Name: attachments read_own; Type: POLICY; Schema: offload; Owner: <installer>
--

CREATE POLICY read_own ON offload.attachments FOR SELECT USING (offload.owns_table(table_id));


--
-- Name: chunks read_own; Type: POLICY; Schema: offload; Owner: <installer>
--

CREATE POLICY read_own ON offload.chunks FOR SELECT USING ((EXISTS ( SELECT
   FROM offload.segments s
  WHERE (s.id = chunks.segment_id))));


--
-- Name: jobs read_own; Type: POLICY; Schema: offload; Owner: <installer>
--

CREATE POLICY read_own ON offload.jobs FOR SELECT USING (offload.owns_table(table_id));


--
-- Name: rewritten_segments read_own; Type: POLICY; Schema: offload; Owner: <installer>
--

CREATE POLICY read_own ON offload.rewritten_segments FOR SELECT USING ((EXISTS ( SELECT
   FROM offload.segments s
  WHERE (s.id = rewritten_segments.segment_id))));


--
-- Name: segment_layouts read_own; Type: POLICY; Schema: offload; Owner: <installer>
--

CREATE POLICY read_own ON offload.segment_layouts FOR SELECT USING ((EXISTS ( SELECT
   FROM offload.segments s
  WHERE (s.id = segment_layouts.segment_id))));


--
-- Name: segments read_own; Type: POLICY; Schema: offload; Owner: <installer>
--

CREATE POLICY read_own ON offload.segments FOR SELECT USING (offload.owns_table(table_id));


--
-- Name: remote_readers; Type: ROW SECURITY; Schema: offload; Owner: <installer>
--

ALTER TABLE offload.remote_readers ENABLE ROW LEVEL SECURITY;

--
-- Name: rewritten_segments; Type: ROW SECURITY; Schema: offload; Owner: <installer>
--

ALTER TABLE offload.rewritten_segments ENABLE ROW LEVEL SECURITY;

--
-- Name: segment_layouts; Type: ROW SECURITY; Schema: offload; Owner: <installer>
--

ALTER TABLE offload.segment_layouts ENABLE ROW LEVEL SECURITY;

--
-- Name: segments; Type: ROW SECURITY; Schema: offload; Owner: <installer>
--

ALTER TABLE offload.segments ENABLE ROW LEVEL SECURITY;

--
-- Name: SCHEMA offload; Type: ACL; Schema: -; Owner: <installer>
--

GRANT USAGE ON SCHEMA offload TO PUBLIC;


--
-- Name: FUNCTION abort_segment(segment bigint); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.abort_segment(segment bigint) FROM PUBLIC;


--
-- Name: FUNCTION begin_segment(job bigint, rel regclass, lo text, hi text, store text, part regclass); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.begin_segment(job bigint, rel regclass, lo text, hi text, store text, part regclass) FROM PUBLIC;


--
-- Name: FUNCTION bound_segment_tables(rel regclass); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.bound_segment_tables(rel regclass) FROM PUBLIC;


--
-- Name: TABLE segments; Type: ACL; Schema: offload; Owner: <installer>
--

GRANT SELECT ON TABLE offload.segments TO PUBLIC;


--
-- Name: FUNCTION chunk_bound_columns(rel regclass); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.chunk_bound_columns(rel regclass) FROM PUBLIC;


--
-- Name: FUNCTION chunk_stats(segment bigint, read_epoch integer, segment_table regclass, recorded jsonb); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.chunk_stats(segment bigint, read_epoch integer, segment_table regclass, recorded jsonb) FROM PUBLIC;


--
-- Name: FUNCTION commit_segment(segment bigint, chunks jsonb, reader_program text, copied_rows bigint); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.commit_segment(segment bigint, chunks jsonb, reader_program text, copied_rows bigint) FROM PUBLIC;


--
-- Name: FUNCTION create_as_user(role name, rel regclass, settings jsonb, fn name, expression text, result_type text); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.create_as_user(role name, rel regclass, settings jsonb, fn name, expression text, result_type text) FROM PUBLIC;


--
-- Name: FUNCTION create_segment_table(s offload.segments, checks text, reader_program text); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.create_segment_table(s offload.segments, checks text, reader_program text) FROM PUBLIC;


--
-- Name: FUNCTION current_installation(); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.current_installation() FROM PUBLIC;


--
-- Name: FUNCTION delete_moved_rows(s offload.segments); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.delete_moved_rows(s offload.segments) FROM PUBLIC;


--
-- Name: FUNCTION due_partitions(rel regclass); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.due_partitions(rel regclass) FROM PUBLIC;


--
-- Name: FUNCTION due_segments(rel regclass, target_bytes bigint); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.due_segments(rel regclass, target_bytes bigint) FROM PUBLIC;


--
-- Name: FUNCTION forget_remote_readers(); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.forget_remote_readers() FROM PUBLIC;


--
-- Name: FUNCTION gc_forget(grace interval, collected_segments bigint[]); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.gc_forget(grace interval, collected_segments bigint[]) FROM PUBLIC;


--
-- Name: FUNCTION gc_prepare(lease interval); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.gc_prepare(lease interval) FROM PUBLIC;


--
-- Name: FUNCTION gc_segments(grace interval); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.gc_segments(grace interval) FROM PUBLIC;


--
-- Name: FUNCTION hot_cutoff(rel regclass); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.hot_cutoff(rel regclass) FROM PUBLIC;


--
-- Name: FUNCTION install_event_trigger(name text, event text, tags text[], handler regproc); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.install_event_trigger(name text, event text, tags text[], handler regproc) FROM PUBLIC;


--
-- Name: FUNCTION is_due(rel regclass); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.is_due(rel regclass) FROM PUBLIC;


--
-- Name: FUNCTION lock_read_endpoints_shared(); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.lock_read_endpoints_shared() FROM PUBLIC;


--
-- Name: FUNCTION merge_segments(ids bigint[]); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.merge_segments(ids bigint[]) FROM PUBLIC;


--
-- Name: TABLE attachments; Type: ACL; Schema: offload; Owner: <installer>
--

GRANT SELECT,INSERT,DELETE ON TABLE offload.attachments TO PUBLIC;


--
-- Name: TABLE policies; Type: ACL; Schema: offload; Owner: <installer>
--

GRANT SELECT,INSERT,DELETE ON TABLE offload.policies TO PUBLIC;


--
-- Name: TABLE segment_layouts; Type: ACL; Schema: offload; Owner: <installer>
--

GRANT SELECT ON TABLE offload.segment_layouts TO PUBLIC;


--
-- Name: FUNCTION merge_signature(s offload.segments); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.merge_signature(s offload.segments) FROM PUBLIC;


--
-- Name: FUNCTION merged_zone_map(rel regclass, ids bigint[]); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.merged_zone_map(rel regclass, ids bigint[]) FROM PUBLIC;


--
-- Name: FUNCTION plan_offload(rel regclass, default_segment_bytes bigint); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.plan_offload(rel regclass, default_segment_bytes bigint) FROM PUBLIC;


--
-- Name: FUNCTION point_remote_servers(); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.point_remote_servers() FROM PUBLIC;


--
-- Name: FUNCTION point_segment_table(segment_table regclass, segment bigint, epoch integer, program text); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.point_segment_table(segment_table regclass, segment bigint, epoch integer, program text) FROM PUBLIC;


--
-- Name: FUNCTION record_chunks(segment bigint, segment_epoch integer, chunks jsonb); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.record_chunks(segment bigint, segment_epoch integer, chunks jsonb) FROM PUBLIC;


--
-- Name: FUNCTION record_layout(segment bigint); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.record_layout(segment bigint) FROM PUBLIC;


--
-- Name: FUNCTION refuse_older_migration(); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.refuse_older_migration() FROM PUBLIC;


--
-- Name: FUNCTION register_read_endpoint(endpoint text, target jsonb, worker text, stale_after interval); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.register_read_endpoint(endpoint text, target jsonb, worker text, stale_after interval) FROM PUBLIC;


--
-- Name: FUNCTION remember_columns(segment bigint); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.remember_columns(segment bigint) FROM PUBLIC;


--
-- Name: FUNCTION remote_reader_login(rel regclass); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.remote_reader_login(rel regclass) FROM PUBLIC;


--
-- Name: FUNCTION remote_reader_table(login text); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.remote_reader_table(login text) FROM PUBLIC;


--
-- Name: FUNCTION remote_segment_head(segment bigint, read_epoch integer); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.remote_segment_head(segment bigint, read_epoch integer) FROM PUBLIC;


--
-- Name: FUNCTION remote_segment_shape(segment bigint, read_epoch integer); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.remote_segment_shape(segment bigint, read_epoch integer) FROM PUBLIC;


--
-- Name: FUNCTION repoint_segment(segment bigint, expected_epoch integer, program text); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.repoint_segment(segment bigint, expected_epoch integer, program text) FROM PUBLIC;


--
-- Name: FUNCTION restore_row_estimates(); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.restore_row_estimates() FROM PUBLIC;


--
-- Name: FUNCTION rewrite_step(segment bigint, params jsonb, requested_by name, step text); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.rewrite_step(segment bigint, params jsonb, requested_by name, step text) FROM PUBLIC;


--
-- Name: FUNCTION segment_checks(s offload.segments, copied_rows bigint); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.segment_checks(s offload.segments, copied_rows bigint) FROM PUBLIC;


--
-- Name: FUNCTION segment_copy_statement(segment bigint); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.segment_copy_statement(segment bigint) FROM PUBLIC;


--
-- Name: FUNCTION segment_lock_statement(segment bigint); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.segment_lock_statement(segment bigint) FROM PUBLIC;


--
-- Name: FUNCTION segment_merge_groups(rel regclass); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.segment_merge_groups(rel regclass) FROM PUBLIC;


--
-- Name: FUNCTION segment_table_bound(rel regclass); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.segment_table_bound(rel regclass) FROM PUBLIC;


--
-- Name: FUNCTION segment_table_server(s offload.segments, reader_program text); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.segment_table_server(s offload.segments, reader_program text) FROM PUBLIC;


--
-- Name: FUNCTION segment_zone_map(segment bigint); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.segment_zone_map(segment bigint) FROM PUBLIC;


--
-- Name: FUNCTION set_planner_rows(segment_table regclass, row_count bigint); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.set_planner_rows(segment_table regclass, row_count bigint) FROM PUBLIC;


--
-- Name: FUNCTION set_remote_reader_password(rel regclass, password text); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.set_remote_reader_password(rel regclass, password text) FROM PUBLIC;


--
-- Name: FUNCTION swap_rewritten_segment(job bigint, segment bigint, new_epoch integer, chunks jsonb, reader_program text, new_rows bigint, matched bigint, fingerprint text); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.swap_rewritten_segment(job bigint, segment bigint, new_epoch integer, chunks jsonb, reader_program text, new_rows bigint, matched bigint, fingerprint text) FROM PUBLIC;


--
-- Name: FUNCTION swap_segment_epoch(segment bigint, new_epoch integer, chunks jsonb, reader_program text, new_rows bigint); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.swap_segment_epoch(segment bigint, new_epoch integer, chunks jsonb, reader_program text, new_rows bigint) FROM PUBLIC;


--
-- Name: FUNCTION write_settings(rel regclass); Type: ACL; Schema: offload; Owner: <installer>
--

REVOKE ALL ON FUNCTION offload.write_settings(rel regclass) FROM PUBLIC;


--
-- Name: TABLE chunks; Type: ACL; Schema: offload; Owner: <installer>
--

GRANT SELECT ON TABLE offload.chunks TO PUBLIC;


--
-- Name: TABLE jobs; Type: ACL; Schema: offload; Owner: <installer>
--

GRANT SELECT,INSERT ON TABLE offload.jobs TO PUBLIC;


--
-- Name: COLUMN jobs.run_after; Type: ACL; Schema: offload; Owner: <installer>
--

GRANT UPDATE(run_after) ON TABLE offload.jobs TO PUBLIC;


--
-- Name: SEQUENCE jobs_id_seq; Type: ACL; Schema: offload; Owner: <installer>
--

GRANT USAGE ON SEQUENCE offload.jobs_id_seq TO PUBLIC;


--
-- Name: TABLE migrations; Type: ACL; Schema: offload; Owner: <installer>
--

GRANT SELECT ON TABLE offload.migrations TO PUBLIC;


--
-- Name: TABLE rewritten_segments; Type: ACL; Schema: offload; Owner: <installer>
--

GRANT SELECT ON TABLE offload.rewritten_segments TO PUBLIC;


--
-- Name: TABLE schema_release; Type: ACL; Schema: offload; Owner: <installer>
--

GRANT SELECT ON TABLE offload.schema_release TO PUBLIC;


--
-- Name: TABLE tables; Type: ACL; Schema: offload; Owner: <installer>
--

GRANT SELECT ON TABLE offload.tables TO PUBLIC;


--
-- Name: offload_on_alter_table; Type: EVENT TRIGGER; Schema: -; Owner: <installer>
--

CREATE EVENT TRIGGER offload_on_alter_table ON ddl_command_end
         WHEN TAG IN ('ALTER TABLE', 'ALTER FOREIGN TABLE')
   EXECUTE FUNCTION offload.on_alter_table();


ALTER EVENT TRIGGER offload_on_alter_table OWNER TO <installer>;

--
-- Name: offload_on_alter_table_start; Type: EVENT TRIGGER; Schema: -; Owner: <installer>
--

CREATE EVENT TRIGGER offload_on_alter_table_start ON ddl_command_start
         WHEN TAG IN ('ALTER TABLE', 'ALTER FOREIGN TABLE')
   EXECUTE FUNCTION offload.on_alter_table_start();


ALTER EVENT TRIGGER offload_on_alter_table_start OWNER TO <installer>;

--
-- Name: offload_on_sql_drop; Type: EVENT TRIGGER; Schema: -; Owner: <installer>
--

CREATE EVENT TRIGGER offload_on_sql_drop ON sql_drop
   EXECUTE FUNCTION offload.on_sql_drop();


ALTER EVENT TRIGGER offload_on_sql_drop OWNER TO <installer>;

--
-- PostgreSQL database dump complete
--


