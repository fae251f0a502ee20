// The database the differential tester queries: the awkward-value fixture as a plain table and as a
// range-partitioned one, both offloaded so that most rows are cold, and an identical copy never
// offloaded that every query's answer is checked against.
import { expect } from "vitest";
import type { RunningBridge } from "../../bridge/bridge.ts";
import { offloadNow, startTestBridge, testStoreConfig } from "../support/bridge-harness.ts";
import { fixture } from "../support/fixtures.ts";
import type { TestDatabase } from "../support/test-database.ts";
import { sampleQueries, spread, type GeneratorContext } from "./query-generator.ts";

/** The copy never offloaded: the reference every answer is compared with. */
export const REFERENCE_TABLE = "awkward_plain";

/** The offloaded tables, each holding the reference's rows. */
export const TARGETS = [
  { name: "plain", table: "awkward" },
  { name: "partitioned", table: "awkward_parted" },
] as const;

export type Target = (typeof TARGETS)[number];

/** Policy for every target: rows older than 30 days (about three quarters) go cold. */
// segment_tables => 3: through postgres_fdw the plain table's segments are merged into two
// segment tables (merged zone maps, chunks of many segments); file_fdw tables are never merged.
const POLICY =
  "SELECT offload.define_policy('diff_cold', time_column => 'created_at', older_than => interval '30 days'," +
  " zone_map_columns => '{id,label,day,amount}', segment_tables => 3)";

/**
 * A way to make the targets' old rows cold and to serve them back: what is compared with never
 * offloaded. One today (the bridge writing segments that file_fdw reads back); a later reader
 * adds an entry here and the differential test runs every query through it too.
 */
export interface OffloadWay {
  name: string;
  /** Offloads the tables (policy `diff_cold` is defined) and keeps serving their cold rows until stop(). */
  offload(db: TestDatabase, tables: readonly string[]): Promise<{ stop(): Promise<void> }>;
}

export const OFFLOAD_WAYS: readonly OffloadWay[] = [
  offloadThrough("file_fdw"),
  offloadThrough("postgres_fdw"),
];

/** Offloads through a bridge, with segment tables that read through `reader`. */
function offloadThrough(reader: "file_fdw" | "postgres_fdw"): OffloadWay {
  return {
    name: reader,
    async offload(db, tables) {
      const store = await testStoreConfig("local");
      let bridge: RunningBridge | undefined;
      const stop = async () => {
        await bridge?.stop();
        await store.cleanup();
      };
      try {
        // Before the bridge connects: its sessions make the segment tables.
        await db.pool.query(`ALTER DATABASE ${db.name} SET pg_offload.reader = '${reader}'`);
        // Small segments: several per table, so CHECK constraints (zone maps) prune some.
        bridge = await startTestBridge(db.url, store.config, {
          overrides: { segmentTargetBytes: 256 * 1024, chunkBytes: 32 * 1024 },
        });
        for (const table of tables) {
          await db.pool.query("SELECT offload.attach_policy($1, 'diff_cold')", [table]);
          const job = await offloadNow(db.pool, table);
          expect(job, `offload of ${table}`).toMatchObject({ state: "succeeded" });
          expect(job.segments_done, `segments of ${table}`).toBeGreaterThan(1);
        }
      } catch (error) {
        await stop();
        throw error;
      }
      return { stop };
    },
  };
}

/**
 * Loads the fixture as `awkward`, copies it as the reference and as a partitioned table, and
 * defines the policy. Every table has an index on id, so joins on id can be parameterized.
 */
export async function createTables(db: TestDatabase): Promise<void> {
  await db.pool.query(fixture("awkward-table.sql"));
  await db.pool.query(`CREATE TABLE ${REFERENCE_TABLE} AS TABLE awkward`);
  await db.pool.query(`ALTER TABLE ${REFERENCE_TABLE} ADD PRIMARY KEY (id)`);
  // Monthly partitions over the rows' time span; id 1's '-infinity' goes to DEFAULT.
  await db.pool.query(`
    CREATE TABLE awkward_parted (LIKE awkward INCLUDING DEFAULTS) PARTITION BY RANGE (created_at);
    CREATE INDEX ON awkward_parted (id);
    DO $$
    DECLARE month_start timestamptz;
    BEGIN
      FOR month_start IN
        SELECT generate_series(date_trunc('month', min(created_at)), date_trunc('month', now()), interval '1 month')
          FROM awkward WHERE isfinite(created_at)
      LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF awkward_parted FOR VALUES FROM (%L) TO (%L)',
          'awkward_parted_' || to_char(month_start, 'YYYYMM'), month_start, month_start + interval '1 month');
      END LOOP;
    END $$;
    CREATE TABLE awkward_parted_default PARTITION OF awkward_parted DEFAULT;
    INSERT INTO awkward_parted SELECT * FROM awkward;
  `);
  await db.pool.query(`ANALYZE awkward, ${REFERENCE_TABLE}, awkward_parted`);
  await db.pool.query(POLICY);
}

/** The generator's constants: up to 40 values of each column, read from the reference table. */
export async function generatorContext(db: TestDatabase): Promise<GeneratorContext> {
  const samples: Record<string, string[]> = {};
  for (const [key, sql] of Object.entries(sampleQueries(REFERENCE_TABLE))) {
    const { rows } = await db.pool.query<{ v: string }>(sql);
    samples[key] = spread(
      rows.map((r) => r.v),
      40,
    );
  }
  const { rows } = await db.pool.query<{ collname: string }>(
    "SELECT collname FROM pg_collation WHERE collname IN ('en-US-x-icu', 'und-x-icu', 'C.utf8') ORDER BY 1",
  );
  return { samples, collations: rows.map((r) => r.collname) };
}
