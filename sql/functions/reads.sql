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
REVOKE EXECUTE ON FUNCTION offload.repoint_segment(segment bigint, expected_epoch integer, program text) FROM PUBLIC;

-- The second reader (README, "Two readers"): segment tables of a table whose policy says
-- reader => 'postgres_fdw' are postgres_fdw foreign tables on a server of that table's own, whose
-- PUBLIC user mapping logs in to the bridges' SQL endpoints as the table's login. The bridge
-- serves a login only the segments of its table: a table's owner can change the table_name option
-- of its segment tables, but neither the server (owned by the installer) nor the mapping.

-- The relation name a postgres_fdw segment table asks the bridge for: the segment and the epoch
-- its rows are read at (a rewrite's swap repoints it, as it repoints the file reader's program).
CREATE OR REPLACE FUNCTION offload.remote_relation_name(segment bigint, epoch int) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
RETURN format('segment_%s_epoch_%s', segment, epoch);

-- The reader new segment tables of a table get: its policy's, else the database's default (the
-- pg_offload.reader setting, e.g. ALTER DATABASE ... SET pg_offload.reader = 'postgres_fdw'),
-- else file_fdw where the database has it, else postgres_fdw (the managed profile: an install
-- by a role that is not a superuser creates no file_fdw). Segment tables made earlier keep theirs.
CREATE OR REPLACE FUNCTION offload.table_reader(rel regclass) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN coalesce((SELECT p.reader FROM offload.attachments a JOIN offload.policies p ON p.name = a.policy_name
                  WHERE a.table_id = rel),
                CASE WHEN current_setting('pg_offload.reader', true) IN ('file_fdw', 'postgres_fdw')
                     THEN current_setting('pg_offload.reader', true) END,
                CASE WHEN EXISTS (SELECT FROM pg_foreign_server WHERE srvname = 'pg_offload_reader')
                     THEN 'file_fdw' ELSE 'postgres_fdw' END);

-- SERVER ... OPTIONS (...) of a new segment table: the file reader's program, or the table's
-- postgres_fdw server and the relation its rows are read from.
CREATE OR REPLACE FUNCTION offload.segment_table_server(s offload.segments, reader_program text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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
REVOKE EXECUTE ON FUNCTION offload.segment_table_server(s offload.segments, reader_program text) FROM PUBLIC;

-- Points a segment table at an epoch of its segment: the file reader's program, or the
-- postgres_fdw relation name. False when it already was.
CREATE OR REPLACE FUNCTION offload.point_segment_table(segment_table regclass, segment bigint, epoch int,
                                                       program text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
REVOKE EXECUTE ON FUNCTION offload.point_segment_table(segment_table regclass, segment bigint, epoch integer, program text) FROM PUBLIC;

-- Does the segment table read through postgres_fdw?
CREATE OR REPLACE FUNCTION offload.reads_remotely(segment_table regclass) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN EXISTS (SELECT FROM pg_foreign_table ft JOIN pg_foreign_server fs ON fs.oid = ft.ftserver
                 JOIN pg_foreign_data_wrapper w ON w.oid = fs.srvfdw
                WHERE ft.ftrelid = segment_table AND w.fdwname = 'postgres_fdw');

-- The login of the table's remote reader, its server made on first use; NULL when the table
-- reads through file_fdw. The bridge then sets the mapping's password
-- (offload.set_remote_reader_password), which only it can derive.
CREATE OR REPLACE FUNCTION offload.remote_reader_login(rel regclass) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
REVOKE EXECUTE ON FUNCTION offload.remote_reader_login(rel regclass) FROM PUBLIC;

-- The options every remote reader server starts with: analyze_sampling off (PostgreSQL 16 and
-- later) so that ANALYZE asks for plain scans; rows fetched 1,000 at a time; no remote
-- estimates (row counts are recorded as file_fdw's are, offload.set_planner_rows); cold rows
-- read-only, refused by postgres_fdw itself (not updatable, not truncatable) as file_fdw
-- refuses them, before anything is sent.
CREATE OR REPLACE FUNCTION offload.remote_server_options() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN concat_ws(', ', 'dbname ''pg-offload''', 'host ''localhost''', 'port ''1''', 'sslmode ''prefer''',
                 'fetch_size ''1000''', 'updatable ''false''', 'truncatable ''false''',
                 CASE WHEN current_setting('server_version_num')::int >= 160000
                      THEN 'analyze_sampling ''off''' END);

-- Sets the password the table's login carries (PUBLIC mapping: every role that may read the table
-- reads its segments through it; pg_user_mappings shows the password to superusers and members
-- of the server's owner only).
CREATE OR REPLACE FUNCTION offload.set_remote_reader_password(rel regclass, password text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
REVOKE EXECUTE ON FUNCTION offload.set_remote_reader_password(rel regclass, password text) FROM PUBLIC;

-- Points every remote reader server at the SQL endpoints of the running bridges (libpq tries
-- the hosts in turn, so reads go on while any one bridge runs). Returns the servers changed.
CREATE OR REPLACE FUNCTION offload.point_remote_servers() RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
REVOKE EXECUTE ON FUNCTION offload.point_remote_servers() FROM PUBLIC;

-- For the bridge's SQL endpoint: the table a login reads.
CREATE OR REPLACE FUNCTION offload.remote_reader_table(login text) RETURNS TABLE (table_oid oid, table_name text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT r.table_id::oid, r.table_id::text FROM offload.remote_readers r WHERE r.login = remote_reader_table.login;
$$;
REVOKE EXECUTE ON FUNCTION offload.remote_reader_table(login text) FROM PUBLIC;

-- The type a column's stored text is decoded as when the bridge evaluates it: a domain's base
-- type (with its typmod), since a domain's CHECK may call code the table's owner wrote, and the
-- stored values passed it already.
CREATE OR REPLACE FUNCTION offload.decode_type(typ oid, typmod int) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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

-- A column's collation as the bridge writes it after COLLATE: schema-qualified and quoted; NULL
-- for a type without one.
CREATE OR REPLACE FUNCTION offload.qualified_collation(coll oid) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT format('%I.%I', n.nspname, c.collname) FROM pg_collation c
          JOIN pg_namespace n ON n.oid = c.collnamespace WHERE c.oid = coll);

-- The columns whose bounds each chunk records (the key and the zone-map columns of a table read
-- through postgres_fdw; none for the file reader), with their place among the fields of the
-- COPY text that offloads and rewrites write (offload.select_list's order).
CREATE OR REPLACE FUNCTION offload.chunk_bound_columns(rel regclass)
RETURNS TABLE (name name, field int, decode_as text, collation_name text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
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
REVOKE EXECUTE ON FUNCTION offload.chunk_bound_columns(rel regclass) FROM PUBLIC;

-- A chunk's recorded statistics ([min, max, nulls] by stored field) under the segment table's
-- column names of today; a column whose type changed since is left out.
CREATE OR REPLACE FUNCTION offload.chunk_stats(segment bigint, read_epoch int, segment_table regclass,
                                               recorded jsonb)
RETURNS TABLE (name name, stats jsonb)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
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
REVOKE EXECUTE ON FUNCTION offload.chunk_stats(segment bigint, read_epoch int, segment_table regclass, recorded jsonb) FROM PUBLIC;

-- Can the bridge decode values of this type without running code a table's owner wrote? Not a
-- composite (its fields may be domains with CHECKs), nor a range or array over one; a domain
-- itself is decoded as its base type (offload.decode_type).
CREATE OR REPLACE FUNCTION offload.decodable_type(typ oid) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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

-- What the SQL endpoint needs to answer for segment `segment` at epoch `read_epoch`: its table,
-- state and size, the segment table's columns now (each with the type to decode it as, its
-- collation, and whether it can be decoded at all), how stored rows map to them, and its chunks
-- with their bounds keyed by today's column names (only where the stored column has today's type).
-- The endpoint keeps the read plan and the chunks per (segment, epoch) while the head's version
-- (offload.remote_segment_head) stays the same; this function computes them afresh.
-- (plpgsql: offload.segment_being_verified is defined by verify.sql, applied after this file.)
CREATE OR REPLACE FUNCTION offload.remote_segment_shape(segment bigint, read_epoch int) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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
REVOKE EXECUTE ON FUNCTION offload.remote_segment_shape(segment bigint, read_epoch int) FROM PUBLIC;

-- What the SQL endpoint checks on every scan of segment `segment` at epoch `read_epoch`: its
-- table, state, whether the epoch is being verified, the segment table's columns now, and a
-- version of everything the read plan and the chunks' statistics under today's names depend on
-- (offload.segment_read_plan, offload.chunk_stats) that can change while the epoch's chunks,
-- committed together in one transaction, stay as they are: the segment table's pg_attribute
-- rows (content and xmin: any ALTER of a column rewrites its row), the epoch's layout (renames
-- rewrite its names), the values of added columns, the types the layout's type names resolve to
-- today, and how many chunks the epoch still has. The columns themselves are computed afresh
-- (type and collation names can change without touching pg_attribute).
CREATE OR REPLACE FUNCTION offload.remote_segment_head(segment bigint, read_epoch int) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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
REVOKE EXECUTE ON FUNCTION offload.remote_segment_head(segment bigint, read_epoch int) FROM PUBLIC;
