-- Rewrites of cold rows: delete_cold, update_cold and rewrite_cold queue a job; the bridge
-- rewrites each segment holding matching rows as a new epoch and swaps it in.
--
-- What a user writes runs with that user's rights only, as the one expression it claims to be, and
-- a rewrite job changes each segment exactly once however often it is retried or taken over.
--
-- The bridge is a superuser. Switching it to a user's role with SET ROLE is no boundary: the
-- user's own code (a function called from a condition, a trigger, a domain's CHECK) can RESET
-- ROLE. PostgreSQL refuses SET ROLE, RESET ROLE and SET SESSION AUTHORIZATION inside a SECURITY
-- DEFINER function, and a SQL function whose body is `RETURN (expression)` is parsed as exactly
-- one expression. So the bridge runs user code only
--   * inside SECURITY DEFINER functions owned by the user, created for one statement of one
--     transaction (invisible to every other session, called once right after they are created,
--     so their owner cannot have altered them in between),
--   * in a transaction that is always rolled back (a deferred trigger queued by user code would
--     otherwise fire at COMMIT with the bridge's rights), on a connection it then closes (session
--     state a user function left behind dies with it).
-- A rewrite therefore reads and transforms a segment in one transaction (rolled back) and swaps
-- the new epoch in with a second one that runs no user code (offload.rewritten_segments records
-- the swap, once per job).

-- Checks that the caller may rewrite the table's cold rows, and that the caller can create
-- temporary functions: the bridge evaluates the caller's expressions in functions the caller
-- creates in the bridge's session.
CREATE OR REPLACE FUNCTION offload.check_rewrite_target(rel regclass) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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

-- What PostgreSQL would ask of the same change as plain DML on the table: SELECT (the condition
-- reads it) and DELETE or UPDATE. An offload_admin member who does not own the table needs them
-- granted; the owner has them. Checked when the job is queued and again by the bridge.
CREATE OR REPLACE FUNCTION offload.check_rewrite_privileges(rel regclass, role name, params jsonb) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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

CREATE OR REPLACE FUNCTION offload.column_type(rel regclass, col text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT format_type(atttypid, atttypmod) FROM pg_attribute
         WHERE attrelid = rel AND attname = col AND attnum > 0 AND NOT attisdropped);

-- The table's columns as a rewrite's first transaction saw them; the swap refuses a different
-- list (an ALTER TABLE landed in between, and the new epoch holds the old columns).
CREATE OR REPLACE FUNCTION offload.column_fingerprint(rel regclass) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT md5(string_agg(format('%s:%s:%s', attname, atttypid, atttypmod), ',' ORDER BY attnum))
          FROM pg_attribute WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped);

-- Assignments name existing columns that do not place rows in segments, each with an expression
-- as a JSON string. Checked when the job is queued and again by the bridge (jobs can be inserted
-- directly by a table's owner).
CREATE OR REPLACE FUNCTION offload.check_assignment_columns(rel regclass, assignments jsonb) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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

-- The parameters of a function that evaluates an expression on one row: one per column, named as
-- the column, so the expression names columns as it would in a WHERE clause.
CREATE OR REPLACE FUNCTION offload.row_parameters(rel regclass) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT string_agg(format('%I %s', attname, format_type(atttypid, NULL)), ', ' ORDER BY attnum)
          FROM pg_attribute WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped);

-- The row's columns as arguments for such a function, from the alias s.
CREATE OR REPLACE FUNCTION offload.row_arguments(rel regclass) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT string_agg(format('s.%I', attname), ', ' ORDER BY attnum)
          FROM pg_attribute WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped);

-- The settings every function around user code pins, as the bridge's sessions have them: a SET
-- clause restores them when the function returns, so nothing a user's code sets with SET LOCAL
-- changes how the bridge's own statements read names or write COPY text afterwards.
CREATE OR REPLACE FUNCTION offload.pinned_settings() RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
RETURN 'SET search_path = pg_catalog, pg_temp SET DateStyle = ''ISO, YMD'' SET TimeZone = ''UTC'' '
       'SET IntervalStyle = postgres SET extra_float_digits = 1 SET bytea_output = hex';

-- The settings a user's expression is read with: those of the session that queued it.
CREATE OR REPLACE FUNCTION offload.expression_settings() RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN jsonb_build_object('search_path', current_setting('search_path'),
                          'DateStyle', current_setting('DateStyle'),
                          'TimeZone', current_setting('TimeZone'),
                          'IntervalStyle', current_setting('IntervalStyle'));

-- A name no statement has used, for a function of this transaction.
CREATE OR REPLACE FUNCTION offload.fresh_function_name(prefix text) RETURNS name
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
RETURN prefix || '_' || replace(gen_random_uuid()::text, '-', '');

-- A statement that parses `expression` against a row of the table (columns by name, no table
-- name, no system columns: as the bridge will evaluate it) without reading a row. The expression
-- sits between a line that ends with "(" and one that starts with ")": the same frame as in
-- offload.expression_function_sql(), so both see the same tokens.
CREATE OR REPLACE FUNCTION offload.expression_check_sql(rel regclass, expression text, result_type text)
RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN format(E'SELECT FROM (SELECT %s FROM ONLY %s LIMIT 0) AS pg_offload_row WHERE (\n%s\n)::%s IS NULL',
              offload.select_list(rel), rel, expression, result_type);

-- CREATE FUNCTION for one user expression, run as the user (inside offload.create_as_user's
-- executor): SECURITY DEFINER, so whatever it calls runs with the user's rights and cannot change
-- role; `RETURN (...)`, so it is one expression; the user's settings, captured when it was queued.
CREATE OR REPLACE FUNCTION offload.expression_function_sql(fn name, rel regclass, expression text, result_type text)
RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN format('CREATE FUNCTION pg_temp.%I(%s) RETURNS %s LANGUAGE sql SECURITY DEFINER '
              'SET search_path FROM CURRENT SET DateStyle FROM CURRENT SET TimeZone FROM CURRENT '
              'SET IntervalStyle FROM CURRENT RETURN CAST((' || E'\n%s\n) AS %s)',
              fn, offload.row_parameters(rel), result_type, expression, result_type);

-- Parses an expression in the caller's session, with the caller's rights: opening a cursor
-- refuses any text that is more than one statement before running any of it (PL/pgSQL's EXECUTE
-- would run them all), and LIMIT 0 reads nothing.
CREATE OR REPLACE FUNCTION offload.check_expression(rel regclass, expression text, result_type text, what text)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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

-- Creates, as `role`, the function for one user expression. The executor that does it is a
-- SECURITY DEFINER function owned by `role`, made here and called at once, once: user code runs
-- in it (while the expression is parsed: a literal's input function, a constant folded), and that
-- code could alter the executor, which nothing calls again. It parses the expression first as in
-- offload.check_expression (one statement, or nothing runs), then creates the function.
CREATE OR REPLACE FUNCTION offload.create_as_user(role name, rel regclass, settings jsonb, fn name,
                                       expression text, result_type text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
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
END $fn$;
REVOKE EXECUTE ON FUNCTION offload.create_as_user(role name, rel regclass, settings jsonb, fn name, expression text, result_type text) FROM PUBLIC;

-- Delete or update cold rows: validated now, in the caller's session, then done by a bridge
-- (rewrite job) that rewrites only the segments holding matching rows, as new epochs.
CREATE OR REPLACE FUNCTION offload.queue_rewrite(rel regclass, params jsonb) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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

-- offload.delete_cold('events', 'user_id = 42'): deletes matching cold rows. The condition is one
-- SQL expression on the table's columns, checked now; rows where it is NULL are kept, as DELETE
-- keeps them. The bridge evaluates it with the caller's rights and settings (search_path,
-- DateStyle, TimeZone, IntervalStyle).
CREATE OR REPLACE FUNCTION offload.delete_cold(table_name regclass, condition text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  caller jsonb := offload.expression_settings();
BEGIN
  PERFORM offload.check_rewrite_target(table_name);
  PERFORM offload.check_rewrite_privileges(table_name, current_user, '{"delete": true}');
  PERFORM offload.check_expression(table_name, condition, 'boolean', 'the condition');
  RETURN offload.queue_rewrite(table_name, jsonb_build_object('delete', true, 'condition', condition,
                                                              'settings', caller));
END $$;

-- offload.update_cold('events', '{"email": "NULL", "name": "''redacted''"}', 'user_id = 42'):
-- sets columns (each to one SQL expression) in matching cold rows. The key column and zone-map
-- columns cannot change: they decide which segment a row lives in.
CREATE OR REPLACE FUNCTION offload.update_cold(table_name regclass, assignments jsonb, condition text)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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

-- offload.rewrite_cold('events'): writes every cold segment of the table again, as the bridge
-- writes today: with its current encryption key, compression level and chunk size. Rows do not
-- change. After a key rotation, this (and garbage collection after the grace period) leaves no
-- chunk needing the old key.
CREATE OR REPLACE FUNCTION offload.rewrite_cold(table_name regclass) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM offload.check_rewrite_target(table_name);
  RETURN offload.queue_rewrite(table_name,
    jsonb_build_object('delete', false, 'condition', 'true', 'assignments', '{}'::jsonb));
END $$;

-- For the bridge, in a rewrite's first transaction (which it rolls back): the statement that does
-- one step of rewriting `segment`, after creating the functions it calls, fresh for it. `step` is
-- 'count' (the rows the condition matches) or 'rows' (the segment's new rows, for COPY TO STDOUT).
-- Everything that reads the segment or evaluates the user's SQL runs inside a SECURITY DEFINER
-- function owned by the role that asked (a domain's CHECK on a column runs while the segment is
-- read); the returned statement calls a function created just now, after any user code ran.
CREATE OR REPLACE FUNCTION offload.rewrite_step(segment bigint, params jsonb, requested_by name, step text)
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
REVOKE EXECUTE ON FUNCTION offload.rewrite_step(segment bigint, params jsonb, requested_by name, step text) FROM PUBLIC;

-- Swaps a segment to its new epoch in one transaction: records the new chunks
-- (offload.record_chunks), retires the old epoch's (readable until garbage collection after the
-- grace period), points the segment table's reader at the new epoch and records the layout the
-- new epoch stores (offload.record_layout). Scans already running finish on the old epoch.
CREATE OR REPLACE FUNCTION offload.swap_segment_epoch(segment bigint, new_epoch int, chunks jsonb,
                                                      reader_program text, new_rows bigint)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
REVOKE EXECUTE ON FUNCTION offload.swap_segment_epoch(segment bigint, new_epoch integer, chunks jsonb, reader_program text, new_rows bigint) FROM PUBLIC;

-- Swaps a rewritten segment to its new epoch, once per job: the second transaction of a rewrite,
-- with no user code in it. A job that already swapped this segment (an earlier attempt, another
-- bridge) gets unique_violation and nothing changes.
CREATE OR REPLACE FUNCTION offload.swap_rewritten_segment(job bigint, segment bigint, new_epoch int, chunks jsonb,
                                               reader_program text, new_rows bigint, matched bigint,
                                               fingerprint text)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
REVOKE EXECUTE ON FUNCTION offload.swap_rewritten_segment(job bigint, segment bigint, new_epoch integer, chunks jsonb, reader_program text, new_rows bigint, matched bigint, fingerprint text) FROM PUBLIC;
