-- The second reader: segment tables read through postgres_fdw, the bridge answering as a
-- PostgreSQL server (README, "Two readers"). A policy chooses its reader; the file reader stays
-- the default.

-- postgres_fdw comes with contrib, as file_fdw does; a server without it can still use the file
-- reader, and a policy asking for postgres_fdw says what is missing.
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_available_extensions WHERE name = 'postgres_fdw') THEN
    CREATE EXTENSION IF NOT EXISTS postgres_fdw;
  END IF;
END $$;

ALTER TABLE offload.policies
  ADD COLUMN reader text CONSTRAINT policies_reader_check CHECK (reader IN ('file_fdw', 'postgres_fdw'));
COMMENT ON COLUMN offload.policies.reader IS
  'pg-offload: how new segment tables of the tables under this policy read their rows: file_fdw (a program) or postgres_fdw (the bridge as a server); NULL: the database''s pg_offload.reader setting, else file_fdw';

-- Exact bounds of the key and zone-map columns over each chunk's rows, {"field": [min, max]} by
-- the column's place among the epoch's stored fields (non-null values; a column whose values are
-- all NULL in the chunk is absent), written for
-- segments read through postgres_fdw: the bridge fetches only chunks whose bounds can match.
ALTER TABLE offload.chunks ADD COLUMN bounds jsonb;

-- One foreign server per table read through postgres_fdw, with a login of its own: the bridge
-- serves a connection only the segments of the table its login names. A table's owner may change
-- its segment tables' options (table_name), but not the server or its user mapping, so cannot
-- reach another table's rows.
CREATE TABLE offload.remote_readers (
  table_id regclass PRIMARY KEY,
  server   name NOT NULL UNIQUE,
  login    text NOT NULL UNIQUE
);
COMMENT ON TABLE offload.remote_readers IS
  'pg-offload: the postgres_fdw server and bridge login of each table read through the bridge''s SQL endpoint';
CREATE SEQUENCE offload.remote_reader_ids;
ALTER TABLE offload.remote_readers ENABLE ROW LEVEL SECURITY;

-- Replaced by offload.point_segment_table, which knows both readers.
DROP FUNCTION IF EXISTS offload.set_reader_program(regclass, text);
DROP FUNCTION IF EXISTS offload.define_policy(text, text, interval, bigint, interval, bigint, text[], bigint, bigint, int);
