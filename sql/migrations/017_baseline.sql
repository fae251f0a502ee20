-- pg-offload's state as of release 0.1.0: the catalog tables, their indexes and constraints, the
-- role, the foreign server and table privileges. Migrations 001-017 of 0.1.0 squashed into one: a
-- database installed by 0.1.0 has version 17 in offload.migrations and skips this file.
--
-- Migrations hold what has state and run once each. Functions, views, triggers, event triggers and
-- row security policies are definitions: they live in sql/functions/ and are applied after the
-- migrations on every install (see bridge/schema-installer.ts). Columns added after a table was
-- first released come last in its CREATE TABLE, in the order they were added, so that a database
-- upgraded from 0.1.0 and a fresh one have the same column order.

-- Every file_fdw segment table reads through this server; its program option lives on each
-- foreign table. Only a superuser may create file_fdw (it runs programs): an install by another
-- role (the managed profile, README) reads through postgres_fdw alone.
DO $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    CREATE EXTENSION IF NOT EXISTS file_fdw;
    CREATE SERVER IF NOT EXISTS pg_offload_reader FOREIGN DATA WRAPPER file_fdw;
  END IF;
END $$;

-- Members manage offloads of every table (README, Privileges). A cluster role: another database of
-- the cluster may have created it already (or, in the managed profile, the admin role: the bridge's
-- role need not be able to create roles).
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'offload_admin') THEN
    CREATE ROLE offload_admin NOLOGIN;
  END IF;
EXCEPTION WHEN duplicate_object THEN
  NULL;
END $$;
-- From PostgreSQL 16 only a role's admins may comment on it; another installer leaves it as it is.
DO $$
BEGIN
  COMMENT ON ROLE offload_admin IS 'pg-offload: may attach policies, run, load back and rewrite offloads of any table';
EXCEPTION WHEN insufficient_privilege THEN
  NULL;
END $$;

-- One row: a random id that prefixes every object key this database writes, so several databases
-- can share one bucket without their keys ever meeting. A dump restored into another database
-- must not write under the keys of the database it was dumped from (their garbage collections
-- would delete each other's objects): each database writes under its own installation id and
-- only ever collects under that one (offload.current_installation()).
CREATE TABLE offload.installation (
  id                text PRIMARY KEY DEFAULT substr(md5(random()::text || clock_timestamp()::text), 1, 12),
  created_at        timestamptz NOT NULL DEFAULT now(),
  system_identifier numeric,
  database_oid      oid,
  superseded_at     timestamptz
);
INSERT INTO offload.installation DEFAULT VALUES;

CREATE TABLE offload.policies (
  name              text PRIMARY KEY CHECK (name <> ''),
  time_column       text NOT NULL CHECK (time_column <> ''),
  -- Exactly one rule: an age for time and date columns, a count of newest key values for
  -- integers, a time without writes, or an amount of heap kept hot.
  older_than        interval CHECK (older_than > interval '0'),
  keep_last         bigint CHECK (keep_last > 0),
  owner             name NOT NULL DEFAULT current_user,
  created_at        timestamptz NOT NULL DEFAULT now(),
  idle_for          interval CHECK (idle_for > interval '0'),
  keep_hot_bytes    bigint CHECK (keep_hot_bytes >= 0),
  zone_map_columns  name[] NOT NULL DEFAULT '{}',
  segment_bytes     bigint CHECK (segment_bytes >= 65536),
  chunk_bytes       bigint CHECK (chunk_bytes BETWEEN 4096 AND 268435456),
  compression_level int CHECK (compression_level BETWEEN 0 AND 22),
  CONSTRAINT policies_one_rule CHECK (num_nonnulls(older_than, keep_last, idle_for, keep_hot_bytes) = 1)
);

CREATE TABLE offload.attachments (
  table_id            regclass PRIMARY KEY,
  policy_name         text NOT NULL REFERENCES offload.policies (name),
  key_column          name NOT NULL,
  key_type            regtype NOT NULL,
  attached_by         name NOT NULL DEFAULT current_user,
  attached_at         timestamptz NOT NULL DEFAULT now(),
  partitioned         boolean NOT NULL DEFAULT false,
  -- idle_for: the table's INSERT/UPDATE/DELETE counter when last seen, and when it last moved.
  activity_count      bigint,
  activity_changed_at timestamptz NOT NULL DEFAULT now()
);

-- attempts: attempts begun that count toward the bridge's limit (PGOFFLOAD_MAX_ATTEMPTS), the
--   running one included; never more than the limit.
-- retries: runs cut short by a conflict with other sessions (serialization failure, deadlock, a
--   lock not granted in time) or by the loss of the bridge running them (its lease taken over),
--   run again without using an attempt. Bounded (PGOFFLOAD_MAX_CONFLICT_RETRIES): past the
--   bound such a failure counts as an attempt like any other, so no job loops forever.
-- kept_*: the work of the job that no later attempt redoes (segments committed, their rows and
--   bytes), as of the last progress write; base_*: that work as of the start of the running
--   attempt. segments_done, rows_done and bytes_done show base_* plus the running attempt's own
--   work, so progress counts every attempt's committed work once.
CREATE TABLE offload.jobs (
  id             bigserial PRIMARY KEY,
  table_id       regclass NOT NULL,
  kind           text NOT NULL DEFAULT 'offload',
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
  finished_at    timestamptz,
  params         jsonb NOT NULL DEFAULT '{}',
  retries        int NOT NULL DEFAULT 0,
  base_segments  int NOT NULL DEFAULT 0,
  base_rows      bigint NOT NULL DEFAULT 0,
  base_bytes     bigint NOT NULL DEFAULT 0,
  kept_segments  int NOT NULL DEFAULT 0,
  kept_rows      bigint NOT NULL DEFAULT 0,
  kept_bytes     bigint NOT NULL DEFAULT 0,
  CONSTRAINT jobs_kind_check CHECK (kind IN ('offload', 'rewrite'))
);
COMMENT ON COLUMN offload.jobs.attempts IS
  'Attempts used of the bridge''s limit (PGOFFLOAD_MAX_ATTEMPTS), the running one included; never more than the limit.';
COMMENT ON COLUMN offload.jobs.retries IS
  'Runs retried without using an attempt: cut short by a serialization failure, deadlock or lock timeout, or by the loss of their bridge.';

-- At most one live job per table: offload.run() and the schedule both rely on this.
CREATE UNIQUE INDEX jobs_one_live_per_table ON offload.jobs (table_id)
  WHERE state IN ('queued', 'running');
CREATE INDEX jobs_claimable ON offload.jobs (run_after) WHERE state = 'queued';

-- A segment is pending from before its first upload until the transaction that moves its rows.
-- Nothing updates a pending row meanwhile: that transaction reads at a snapshot taken before the
-- copy, and a concurrent update would make its commit fail. A pending segment whose job is no
-- longer running is an abandoned attempt; its objects are garbage.
CREATE TABLE offload.segments (
  id                 bigserial PRIMARY KEY,
  table_id           regclass NOT NULL,
  job_id             bigint REFERENCES offload.jobs (id) ON DELETE SET NULL,
  epoch              int NOT NULL DEFAULT 1,
  state              text NOT NULL DEFAULT 'pending',
  key_column         name NOT NULL,
  key_type           regtype NOT NULL,
  -- [range_lo, range_hi) in the key type's text form, written with DateStyle ISO and TimeZone UTC.
  range_lo           text NOT NULL,
  range_hi           text NOT NULL,
  columns            jsonb NOT NULL,
  encoding           name NOT NULL,
  store              text NOT NULL,
  segment_table      regclass,
  rows               bigint,
  raw_bytes          bigint,
  stored_bytes       bigint,
  created_at         timestamptz NOT NULL DEFAULT now(),
  committed_at       timestamptz,
  -- For a partition offload: the partition that was replaced, and its bound clause.
  partition_name     text,
  partition_bound    text,
  -- Exact min/max of the policy's zone-map columns in the segment, {"col": [min, max]}.
  zone_map           jsonb NOT NULL DEFAULT '{}',
  -- When the segment stopped being readable (loaded back, table dropped, attempt abandoned):
  -- its objects are removed once the grace period has passed since then.
  retired_at         timestamptz,
  -- Columns added after the offload: name -> the value old rows show (COPY text form, or null).
  added_columns      jsonb NOT NULL DEFAULT '{}',
  -- The segment table's columns as last seen ({attnum, name, type, typmod}), to tell a rename
  -- from a drop and an add; valid while the table keeps its oid and its attribute count.
  seen_columns       jsonb,
  seen_oid           oid,
  seen_natts         int,
  -- The transaction that last added or dropped columns of the segment table (uncommitted while
  -- it is the current one: the bridge does not see those columns yet).
  columns_changed_in xid8,
  CONSTRAINT segments_state_check CHECK (state IN ('pending', 'committed', 'aborted', 'retired'))
);
COMMENT ON COLUMN offload.segments.columns IS
  'The parent''s columns when the segment began; offload.segment_layouts has what each epoch stores.';
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
  -- Chunks of an epoch replaced by a rewrite: kept (and readable) until the grace period passes.
  retired_at   timestamptz,
  key_id       text CHECK (key_id ~ '^[0-9a-f]{8}$'),
  PRIMARY KEY (segment_id, epoch, seq)
);
COMMENT ON COLUMN offload.chunks.key_id IS
  'pg-offload: id of the key the chunk is encrypted with (see the README, Encryption); NULL: not encrypted';

-- The stored fields of one epoch, in order: {name, type, typmod} each, where name is the column's
-- current name (NULL once the column is dropped) and type and typmod what it was written as. The
-- ALTER TABLE event trigger keeps the names current (sql/functions/schema_changes.sql).
CREATE TABLE offload.segment_layouts (
  segment_id bigint NOT NULL REFERENCES offload.segments (id) ON DELETE CASCADE,
  epoch      int NOT NULL,
  fields     jsonb NOT NULL,
  PRIMARY KEY (segment_id, epoch)
);

-- One row per segment a rewrite job has swapped: a retried or taken-over job skips them.
CREATE TABLE offload.rewritten_segments (
  job_id       bigint NOT NULL REFERENCES offload.jobs (id) ON DELETE CASCADE,
  segment_id   bigint NOT NULL REFERENCES offload.segments (id) ON DELETE CASCADE,
  epoch        int NOT NULL,
  matched_rows bigint NOT NULL,
  PRIMARY KEY (job_id, segment_id)
);
COMMENT ON TABLE offload.rewritten_segments IS
  'pg-offload: segments each rewrite job has swapped to a new epoch, so that a retry never changes them twice';

-- The read endpoint each running bridge serves (README, Several bridges); every segment table's
-- reader program names all of them. The bridges' alone (they run as superuser): its rows become
-- shell commands.
CREATE TABLE offload.read_endpoints (
  endpoint     text PRIMARY KEY,      -- unix:/path/read.sock or http://host:port
  -- A dump restored elsewhere brings the rows of the bridges of the database it was dumped from,
  -- which serve that database's segments under the same ids: such rows are dropped, never named.
  installation text NOT NULL,
  target       jsonb NOT NULL,        -- what the reader program is built from
  worker_id    text NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  seen_at      timestamptz NOT NULL DEFAULT now()  -- refreshed by the bridge while it runs
);

-- Callers see the catalog rows of tables they manage (row security, sql/functions/privileges.sql)
-- and write only rows about tables (and policies) they own. Installation ids and read endpoints
-- are the bridge's business.
GRANT USAGE ON SCHEMA offload TO PUBLIC;
GRANT SELECT ON offload.migrations TO PUBLIC;
GRANT SELECT ON offload.policies, offload.attachments, offload.jobs, offload.segments,
  offload.chunks, offload.segment_layouts, offload.rewritten_segments TO PUBLIC;
GRANT INSERT, DELETE ON offload.policies, offload.attachments TO PUBLIC;
GRANT INSERT, UPDATE (run_after) ON offload.jobs TO PUBLIC;
GRANT USAGE ON SEQUENCE offload.jobs_id_seq TO PUBLIC;

ALTER TABLE offload.policies ENABLE ROW LEVEL SECURITY;
ALTER TABLE offload.attachments ENABLE ROW LEVEL SECURITY;
ALTER TABLE offload.jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE offload.segments ENABLE ROW LEVEL SECURITY;
ALTER TABLE offload.chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE offload.segment_layouts ENABLE ROW LEVEL SECURITY;
ALTER TABLE offload.rewritten_segments ENABLE ROW LEVEL SECURITY;
