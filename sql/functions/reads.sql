-- Reads: what the read endpoint serves for a segment (its read plan), and the read endpoints
-- of the running bridges that every segment table's reader program names.

-- For the read endpoint: how to build each column of the segment table from a stored row of
-- the epoch: {"fields": n, "columns": [{"field": i} or {"value": text or null}, ...]}.
-- NULL when no layout is recorded (the stored rows are then served as they are).
CREATE OR REPLACE FUNCTION offload.segment_read_plan(segment bigint, read_epoch int) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
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

-- Taken inside a commit transaction before it reads the endpoints for its reader program.
CREATE OR REPLACE FUNCTION offload.lock_read_endpoints_shared() RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  SELECT pg_advisory_xact_lock_shared(1885826918, -1);
$$;
REVOKE EXECUTE ON FUNCTION offload.lock_read_endpoints_shared() FROM PUBLIC;

-- Advisory lock keys: "pgof" read as an integer (as for verification, sql/functions/verify.sql),
-- with objids below zero, which segment ids never take.
--   -1: the list of endpoints. Taken exclusively to add one, shared by every commit that writes a
--       reader program while it reads the list. A commit either reads the list after the
--       addition (and names the new endpoint), or the addition waited for it to commit (and the
--       new bridge, repointing every committed segment table next, repoints its table too).
--   -2: held by a bridge from recording its endpoint until every segment table names the list
--       it read then, so that two bridges starting at once cannot leave tables naming one list
--       without the other's endpoint.
-- Records (or renews) a bridge's endpoint, and forgets endpoints not seen for `stale_after` and
-- those recorded under another installation (before a dump and restore).

-- Records (or renews) a bridge's endpoint, and forgets endpoints not seen for `stale_after` and
-- those recorded under another installation (before a dump and restore).
CREATE OR REPLACE FUNCTION offload.register_read_endpoint(endpoint text, target jsonb, worker text,
                                               stale_after interval) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
REVOKE EXECUTE ON FUNCTION offload.register_read_endpoint(endpoint text, target jsonb, worker text, stale_after interval) FROM PUBLIC;

-- Points a segment table at `program` when the segment is still committed at `expected_epoch`;
-- false when it is not (any more), or already was. A starting bridge repoints every segment this
-- way while other bridges may rewrite or load back segments: a rewrite that swapped in a new
-- epoch since the bridge listed the segments must keep its own (new) program, never be sent back
-- to the old epoch. The ALTER takes the segment table's ACCESS EXCLUSIVE lock (LOCK TABLE refuses
-- foreign tables), and every change of a segment's epoch or state takes it too before it commits,
-- so the row checked after the ALTER stays as checked until this commits; if it changed before,
-- the ALTER is undone.
CREATE OR REPLACE FUNCTION offload.repoint_segment(segment bigint, expected_epoch int, program text)
RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  seg_table regclass;
  seg_name text;
BEGIN
  SELECT s.segment_table INTO seg_table FROM offload.segments s
   WHERE s.id = segment AND s.state = 'committed' AND s.epoch = expected_epoch;
  IF seg_table IS NULL OR EXISTS (SELECT FROM pg_foreign_table ft WHERE ft.ftrelid = seg_table
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
REVOKE EXECUTE ON FUNCTION offload.repoint_segment(segment bigint, expected_epoch integer, program text) FROM PUBLIC;
