-- pg-offload catalog: policies, attachments, jobs, segments and chunks (the virtual index).
-- Applied once by the schema installer, inside a transaction holding the installer's advisory lock.

CREATE EXTENSION IF NOT EXISTS file_fdw;

-- Every segment table reads through this server; its program option lives on each foreign table.
CREATE SERVER IF NOT EXISTS pg_offload_reader FOREIGN DATA WRAPPER file_fdw;

-- One row: a random id that prefixes every object key this database writes, so several databases
-- can share one bucket without their keys ever meeting.
CREATE TABLE offload.installation (
  id         text PRIMARY KEY DEFAULT substr(md5(random()::text || clock_timestamp()::text), 1, 12),
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO offload.installation DEFAULT VALUES;

CREATE TABLE offload.policies (
  name        text PRIMARY KEY CHECK (name <> ''),
  time_column text NOT NULL CHECK (time_column <> ''),
  -- Exactly one rule: an age for time and date columns, a count of newest key values for integers.
  older_than  interval CHECK (older_than > interval '0'),
  keep_last   bigint CHECK (keep_last > 0),
  owner       name NOT NULL DEFAULT current_user,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CHECK ((older_than IS NULL) <> (keep_last IS NULL))
);

CREATE TABLE offload.attachments (
  table_id    regclass PRIMARY KEY,
  policy_name text NOT NULL REFERENCES offload.policies (name),
  key_column  name NOT NULL,
  key_type    regtype NOT NULL,
  attached_by name NOT NULL DEFAULT current_user,
  attached_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE offload.jobs (
  id             bigserial PRIMARY KEY,
  table_id       regclass NOT NULL,
  kind           text NOT NULL DEFAULT 'offload' CHECK (kind IN ('offload')),
  state          text NOT NULL DEFAULT 'queued'
                 CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
  attempts       int NOT NULL DEFAULT 0,
  run_after      timestamptz NOT NULL DEFAULT now(),
  locked_by      text,
  locked_at      timestamptz,
  heartbeat_at   timestamptz,
  segments_total int,
  segments_done  int NOT NULL DEFAULT 0,
  rows_done      bigint NOT NULL DEFAULT 0,
  bytes_done     bigint NOT NULL DEFAULT 0,
  last_error     text,
  requested_by   name NOT NULL DEFAULT current_user,
  created_at     timestamptz NOT NULL DEFAULT now(),
  started_at     timestamptz,
  finished_at    timestamptz
);

-- At most one live job per table: offload.run() and the schedule both rely on this.
CREATE UNIQUE INDEX jobs_one_live_per_table ON offload.jobs (table_id)
  WHERE state IN ('queued', 'running');
CREATE INDEX jobs_claimable ON offload.jobs (run_after) WHERE state = 'queued';

-- A segment is pending from before its first upload until the transaction that moves its rows.
-- Nothing updates a pending row meanwhile: that transaction reads at a snapshot taken before the
-- copy, and a concurrent update would make its commit fail. A pending segment whose job is no
-- longer running is an abandoned attempt; its objects are garbage.
CREATE TABLE offload.segments (
  id            bigserial PRIMARY KEY,
  table_id      regclass NOT NULL,
  job_id        bigint REFERENCES offload.jobs (id) ON DELETE SET NULL,
  epoch         int NOT NULL DEFAULT 1,
  state         text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'committed', 'aborted')),
  key_column    name NOT NULL,
  key_type      regtype NOT NULL,
  -- [range_lo, range_hi) in the key type's text form, written with DateStyle ISO and TimeZone UTC.
  range_lo      text NOT NULL,
  range_hi      text NOT NULL,
  -- The column layout the rows were written with (name and type per column, in order).
  columns       jsonb NOT NULL,
  encoding      name NOT NULL,
  store         text NOT NULL,
  segment_table regclass,
  rows          bigint,
  raw_bytes     bigint,
  stored_bytes  bigint,
  created_at    timestamptz NOT NULL DEFAULT now(),
  committed_at  timestamptz
);
CREATE INDEX segments_by_table ON offload.segments (table_id);

-- The virtual index: one row per stored object. Keys are stored, never recomputed.
CREATE TABLE offload.chunks (
  segment_id   bigint NOT NULL REFERENCES offload.segments (id) ON DELETE CASCADE,
  epoch        int NOT NULL,
  seq          int NOT NULL,
  object_key   text NOT NULL UNIQUE,
  rows         bigint NOT NULL,
  raw_bytes    bigint NOT NULL,
  stored_bytes bigint NOT NULL,
  crc32c       bigint NOT NULL,
  codec        text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (segment_id, epoch, seq)
);
