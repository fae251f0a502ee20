-- The plan-time benchmark's tables: the same 1,000 hot rows (with an index) in three shapes.
--   plan_plain       never offloaded, no children
--   plan_segments    a plain table with {segments} segment tables, shaped as an offload makes
--                    them (offload.create_segment_table): file_fdw foreign tables that INHERIT
--                    from it, each with its key range and one zone-map range as CHECKs
--   plan_partitions  declaratively partitioned on the same bounds: one hot partition and
--                    {segments} offloaded ones, shaped as an offload makes them (a partitioned
--                    table of the partition's bounds holding one foreign table)
--   plan_merged      a plain table with the same cold data read through postgres_fdw, its
--                    segments merged to {merged} segment tables (offload.merge_segments makes them
--                    so: one key-range CHECK over the merged segments' ranges, one zone-map CHECK
--                    over their union), each covering an equal share of the cold hours
-- Each cold range is one hour, ending where the hot rows begin.
CREATE TABLE plan_plain (id bigint, created_at timestamptz NOT NULL, device int, reading double precision);
INSERT INTO plan_plain
SELECT g, timestamptz '2026-06-01' + g * interval '1 minute', g % 50, g * 0.5
  FROM generate_series(1, 1000) g;
CREATE INDEX ON plan_plain (created_at);

CREATE TABLE plan_segments (LIKE plan_plain);
INSERT INTO plan_segments SELECT * FROM plan_plain;
CREATE INDEX ON plan_segments (created_at);

CREATE TABLE plan_merged (LIKE plan_plain);
INSERT INTO plan_merged SELECT * FROM plan_plain;
CREATE INDEX ON plan_merged (created_at);
-- Analysed before its foreign tables exist: ANALYZE of the tree would sample them through the
-- (unreachable) server. The other shapes' trees are analysed with theirs (file_fdw reads `false`).
ANALYZE plan_merged;
-- Never connected to: the hot-only query excludes every segment table at plan time.
CREATE SERVER IF NOT EXISTS plan_bench_remote FOREIGN DATA WRAPPER postgres_fdw
  OPTIONS (host '127.0.0.1', port '1', dbname 'none');

CREATE TABLE plan_partitions (LIKE plan_plain) PARTITION BY RANGE (created_at);
CREATE TABLE plan_partitions_hot PARTITION OF plan_partitions
  FOR VALUES FROM ('2026-06-01') TO (MAXVALUE);
INSERT INTO plan_partitions SELECT * FROM plan_plain;
CREATE INDEX ON plan_partitions (created_at);

DO $$
DECLARE
  hi timestamptz;
  lo timestamptz;
BEGIN
  FOR i IN 1..{segments} LOOP
    hi := timestamptz '2026-06-01' - (i - 1) * interval '1 hour';
    lo := hi - interval '1 hour';
    EXECUTE format(
      'CREATE FOREIGN TABLE %I (CONSTRAINT %I CHECK (created_at >= %L::timestamptz AND created_at < %L::timestamptz),
                                CONSTRAINT %I CHECK (id >= %s AND id <= %s))
         INHERITS (plan_segments) SERVER pg_offload_reader
         OPTIONS (program %L, format ''text'')',
      'plan_segments__offloaded_' || i, 'plan_segments__offloaded_' || i || '_range', lo, hi,
      'id_zone_' || i, -i * 1000, -i * 1000 + 999, 'false');
    EXECUTE format('CREATE TABLE %I PARTITION OF plan_partitions FOR VALUES FROM (%L) TO (%L)
                      PARTITION BY RANGE (created_at)', 'plan_partitions_p' || i, lo, hi);
    EXECUTE format('CREATE FOREIGN TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)
                      SERVER pg_offload_reader OPTIONS (program %L, format ''text'')',
                   'plan_partitions_p' || i || '__offloaded_' || i, 'plan_partitions_p' || i, lo, hi, 'false');
  END LOOP;
END $$;
DO $$
DECLARE
  share int := ceil({segments}::numeric / {merged});
  hi timestamptz;
  lo timestamptz;
BEGIN
  FOR m IN 1..least({merged}, {segments}) LOOP
    hi := timestamptz '2026-06-01' - (m - 1) * share * interval '1 hour';
    lo := greatest(hi - share * interval '1 hour', timestamptz '2026-06-01' - {segments} * interval '1 hour');
    EXECUTE format(
      'CREATE FOREIGN TABLE %I (CONSTRAINT %I CHECK (created_at >= %L::timestamptz AND created_at < %L::timestamptz),
                                CONSTRAINT %I CHECK (id >= %s AND id <= %s))
         INHERITS (plan_merged) SERVER plan_bench_remote
         OPTIONS (schema_name ''pg_offload'', table_name %L)',
      'plan_merged__offloaded_' || m, 'plan_merged__offloaded_' || m || '_range', lo, hi,
      'id_zone_' || m, -m * share * 1000, -(m - 1) * share * 1000 + 999, 'segment_' || m || '_epoch_1');
  END LOOP;
END $$;
ANALYZE plan_plain, plan_segments, plan_partitions;
