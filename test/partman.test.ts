import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningBridge } from "../bridge/bridge.ts";
import { collectGarbage } from "../bridge/garbage-collector.ts";
import { installSchema } from "../bridge/schema-installer.ts";
import { startLocalPostgres, type LocalPostgres } from "../sandbox/local-postgres.ts";
import { offloadNow, startTestBridge, testStoreConfig } from "./support/bridge-harness.ts";
import { partitionsOf } from "./support/fixtures.ts";
import { serverExtension } from "./support/server-tools.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";
import { waitUntil } from "./support/wait.ts";

/**
 * pg_partman (Debian's postgresql-15-partman, 4.7) managing tables whose old partitions
 * pg-offload has offloaded: its unmodified maintenance premakes, and its retention drops,
 * detaches or keeps offloaded partitions like any other. pg_cron (postgresql-15-cron, 1.4)
 * schedules that maintenance. Skipped, saying why, where the server has no such extension (the
 * PostgreSQL matrix's servers from the npm registry).
 */
const PARTMAN = await serverExtension("pg_partman", "pg_partman maintenance");
const CRON_FOUND = await serverExtension("pg_cron", "pg_cron scheduling pg_partman", "pg_cron");
if (CRON_FOUND && !PARTMAN)
  console.warn("skipped: pg_cron scheduling pg_partman: needs pg_partman too");
const CRON = CRON_FOUND && PARTMAN;

/** Three tables, one per way retention treats old partitions (pg_partman's part_config). */
const TABLES = {
  clicks_drop: { retention: "7 days", keepTable: false },
  clicks_detach: { retention: "7 days", keepTable: true },
  clicks_kept: { retention: null, keepTable: true },
} as const;
type Table = keyof typeof TABLES;

/** A daily pg_partman table of 14 days of rows (every hour), 3 days premade. */
async function createPartmanTable(db: pg.Pool, table: string): Promise<void> {
  await db.query(`CREATE TABLE ${table} (
      id bigint NOT NULL, created_at timestamptz NOT NULL, url text, ms int
    ) PARTITION BY RANGE (created_at)`);
  await db.query(`CREATE INDEX ON ${table} (created_at)`);
  await db.query(
    `SELECT partman.create_parent($1, 'created_at', 'native', 'daily', p_premake := 3,
                                  p_start_partition := (now() - interval '14 days')::date::text)`,
    [`public.${table}`],
  );
  await db.query(
    `INSERT INTO ${table}
     SELECT g, now() - interval '14 days' + g * interval '1 hour', 'https://example.com/' || g,
            CASE WHEN g % 7 = 0 THEN NULL ELSE g % 500 END
       FROM generate_series(1, 14 * 24 - 1) g`,
  );
  await db.query(`ANALYZE ${table}`);
}

async function setUpPartman(db: pg.Pool): Promise<void> {
  await db.query("CREATE SCHEMA partman");
  await db.query("CREATE EXTENSION pg_partman SCHEMA partman");
}

/** Every row, each with the partition it is in, as text (ordered by id). */
async function rowsByPartition(db: pg.Pool, table: string): Promise<Map<string, string[]>> {
  const { rows } = await db.query(
    `SELECT tableoid::regclass::text AS part, t::text AS row FROM ${table} t ORDER BY id`,
  );
  const parts = new Map<string, string[]>();
  for (const r of rows) parts.set(r.part, [...(parts.get(r.part) ?? []), r.row]);
  return parts;
}

async function allRows(db: pg.Pool, table: string): Promise<string[]> {
  const { rows } = await db.query(`SELECT t::text AS row FROM ${table} t ORDER BY id`);
  return rows.map((r) => r.row as string);
}

/** The table's direct partitions, by name, with their kind ('p': an offloaded one). */
async function partitionKinds(db: pg.Pool, table: string): Promise<Map<string, string>> {
  return new Map((await partitionsOf(db, table)).map((p) => [p.name, p.kind]));
}

/**
 * Daily partitions (pg_partman's names) starting after the newest row's day: the premade ones.
 * pg_partman premakes from the newest partition holding rows, and the newest row is an hour old:
 * in the first hour of a day (UTC) that is yesterday.
 */
function futurePartitions(parts: Map<string, string>, table: string): string[] {
  const newestRow = new Date(Date.now() - 3_600_000);
  const today = newestRow.toISOString().slice(0, 10).replace(/-/g, "_");
  return [...parts.keys()].filter((n) => n.startsWith(`${table}_p`) && n.slice(-10) > today);
}

interface SegmentRow {
  id: string;
  state: string;
  partition_name: string;
  segment_table: string | null;
  exists: boolean;
}

async function segmentsOf(db: pg.Pool, table: string): Promise<SegmentRow[]> {
  const { rows } = await db.query<SegmentRow>(
    `SELECT s.id, s.state, (parse_ident(s.partition_name))[cardinality(parse_ident(s.partition_name))] AS partition_name,
            s.segment_table::text,
            EXISTS (SELECT FROM pg_class c WHERE c.oid = s.segment_table) AS exists
       FROM offload.segments s WHERE s.table_id = $1::regclass AND s.state <> 'aborted' ORDER BY s.id`,
    [table],
  );
  return rows;
}

describe.skipIf(!PARTMAN)("pg_partman maintenance on tables with offloaded partitions", () => {
  let db: TestDatabase;
  let bridge: RunningBridge;
  let cleanupStore: () => Promise<void>;
  const before = new Map<Table, Map<string, string[]>>();
  const partsBefore = new Map<Table, Map<string, string>>();
  const segmentsBefore = new Map<Table, SegmentRow[]>();

  beforeAll(async () => {
    db = await createTestDatabase("partman");
    const config = await testStoreConfig("local");
    cleanupStore = config.cleanup;
    bridge = await startTestBridge(db.url, config.config);
    await setUpPartman(db.pool);
    await db.pool.query(
      "SELECT offload.define_policy('cold_after_3d', 'created_at', interval '3 days')",
    );
    for (const [table, t] of Object.entries(TABLES) as Array<[Table, (typeof TABLES)[Table]]>) {
      await createPartmanTable(db.pool, table);
      before.set(table, await rowsByPartition(db.pool, table));
      await db.pool.query("SELECT offload.attach_policy($1, 'cold_after_3d')", [table]);
      const job = await offloadNow(db.pool, table);
      expect(job.state, job.last_error ?? "").toBe("succeeded");
      partsBefore.set(table, await partitionKinds(db.pool, table));
      segmentsBefore.set(table, await segmentsOf(db.pool, table));
      // Premake 6 from now on: maintenance has to make 3 more, after its retention.
      await db.pool.query(
        `UPDATE partman.part_config SET premake = 6, retention = $2, retention_keep_table = $3
          WHERE parent_table = $1`,
        [`public.${table}`, t.retention, t.keepTable],
      );
    }
    // pg_partman's own maintenance, unmodified, for every table it manages at once.
    await db.pool.query("SELECT partman.run_maintenance()");
  }, 120_000);

  afterAll(async () => {
    await bridge?.stop();
    await db?.drop();
    await cleanupStore?.();
  });

  it("offloaded the old partitions: each keeps its name, as a partitioned table", () => {
    for (const table of Object.keys(TABLES) as Table[]) {
      const parts = partsBefore.get(table)!;
      const offloaded = [...parts].filter(([, kind]) => kind === "p");
      expect(offloaded.length, table).toBeGreaterThanOrEqual(9);
      expect(segmentsBefore.get(table)!.length).toBe(offloaded.length);
      for (const [name] of offloaded) expect(name).toMatch(new RegExp(`^${table}_p\\d{4}_`));
    }
  });

  it("premakes future partitions on every table, after retention dropped offloaded ones", async () => {
    for (const table of Object.keys(TABLES) as Table[]) {
      const future = futurePartitions(await partitionKinds(db.pool, table), table);
      expect(future.length, table).toBeGreaterThanOrEqual(6);
      expect(future.length).toBeGreaterThan(
        futurePartitions(partsBefore.get(table)!, table).length,
      );
    }
  });

  it("retention that drops: offloaded partitions are gone, their segments retired for gc", async () => {
    const parts = await partitionKinds(db.pool, "clicks_drop");
    const dropped = [...partsBefore.get("clicks_drop")!.keys()].filter((n) => !parts.has(n));
    const offloadedDropped = dropped.filter((n) => partsBefore.get("clicks_drop")!.get(n) === "p");
    expect(offloadedDropped.length).toBeGreaterThanOrEqual(5);
    // Some offloaded partitions are younger than the retention: they stay, cold.
    expect([...parts.values()].filter((k) => k === "p").length).toBeGreaterThanOrEqual(2);

    const segments = await segmentsOf(db.pool, "clicks_drop");
    const byPartition = new Map(segments.map((s) => [s.partition_name, s]));
    for (const name of offloadedDropped) {
      expect(byPartition.get(name)).toMatchObject({ state: "retired", exists: false });
    }
    for (const s of segments.filter((s) => !dropped.includes(s.partition_name))) {
      expect(s).toMatchObject({ state: "committed", exists: true });
    }
    const { rows: keys } = await db.pool.query(
      `SELECT c.object_key FROM offload.chunks c JOIN offload.segments s ON s.id = c.segment_id
        WHERE s.table_id = 'clicks_drop'::regclass AND s.state = 'retired'`,
    );
    // A partition without rows (the first day's, when the run starts late in the day) has no chunks.
    const withRows = offloadedDropped.filter((n) => before.get("clicks_drop")!.has(n));
    expect(keys.length).toBeGreaterThanOrEqual(withRows.length);
    const install = (
      await db.pool.query("SELECT id FROM offload.installation WHERE superseded_at IS NULL")
    ).rows[0].id;
    const gc = await collectGarbage(db.pool, bridge.store, install, {
      graceMs: 0,
      leaseMs: 60_000,
      dryRun: true,
    });
    const candidates = new Set(gc.candidates.map((c) => c.key));
    for (const { object_key } of keys) expect(candidates.has(object_key)).toBe(true);
  });

  it("retention that drops: the remaining rows, hot and cold, read exactly as before", async () => {
    const parts = await partitionKinds(db.pool, "clicks_drop");
    const expected = [...before.get("clicks_drop")!]
      .filter(([part]) => parts.has(part))
      .flatMap(([, rows]) => rows)
      .sort((a, b) => Number(a.slice(1, a.indexOf(","))) - Number(b.slice(1, b.indexOf(","))));
    expect(expected.length).toBeGreaterThan(100);
    expect(await allRows(db.pool, "clicks_drop")).toEqual(expected);
  });

  it("retention that detaches: the detached partitions read as before, their segments kept", async () => {
    const parts = await partitionKinds(db.pool, "clicks_detach");
    const detached = [...partsBefore.get("clicks_detach")!].filter(
      ([name, kind]) => kind === "p" && !parts.has(name),
    );
    expect(detached.length).toBeGreaterThanOrEqual(5);
    for (const [name] of detached) {
      const rows = before.get("clicks_detach")!.get(name) ?? []; // an empty partition: none
      expect(await allRows(db.pool, name), name).toEqual(rows);
    }
    for (const s of await segmentsOf(db.pool, "clicks_detach")) {
      expect(s).toMatchObject({ state: "committed", exists: true });
    }
    // The table reads the rows still in it; a load back takes only the partitions still in it.
    const kept = [...before.get("clicks_detach")!].filter(([part]) => parts.has(part));
    expect((await allRows(db.pool, "clicks_detach")).length).toBe(
      kept.reduce((n, [, rows]) => n + rows.length, 0),
    );
    const client = await db.pool.connect();
    try {
      await client.query("BEGIN");
      const { rows } = await client.query("SELECT offload.load_back('clicks_detach') AS n");
      const stillCold = kept.filter(([part]) => parts.get(part) === "p");
      expect(Number(rows[0].n)).toBe(stillCold.reduce((n, [, r]) => n + r.length, 0));
      for (const [name] of detached) {
        const { rows: again } = await client.query(`SELECT count(*)::int AS n FROM ${name}`);
        expect(again[0].n).toBe(before.get("clicks_detach")!.get(name)?.length ?? 0);
      }
    } finally {
      await client.query("ROLLBACK");
      client.release();
    }
  });

  it("no retention: every partition stays, every row reads exactly as before", async () => {
    const parts = await partitionKinds(db.pool, "clicks_kept");
    for (const [name, kind] of partsBefore.get("clicks_kept")!) expect(parts.get(name)).toBe(kind);
    const expected = [...before.get("clicks_kept")!.values()]
      .flat()
      .sort((a, b) => Number(a.slice(1, a.indexOf(","))) - Number(b.slice(1, b.indexOf(","))));
    expect(await allRows(db.pool, "clicks_kept")).toEqual(expected);
    for (const s of await segmentsOf(db.pool, "clicks_kept")) {
      expect(s).toMatchObject({ state: "committed", exists: true });
    }
  });
});

describe.skipIf(!CRON)("pg_cron scheduling pg_partman's maintenance", { timeout: 150_000 }, () => {
  let server: LocalPostgres;
  let pool: pg.Pool;
  let bridge: RunningBridge;
  let cleanupStore: () => Promise<void>;

  beforeAll(async () => {
    server = await startLocalPostgres({
      settings: {
        shared_preload_libraries: "pg_cron",
        "cron.database_name": "cron_partman",
        // pg_cron connects to run a job; the server listens on 127.0.0.1 only.
        "cron.host": "127.0.0.1",
      },
    });
    const admin = new pg.Client({ connectionString: server.url() });
    await admin.connect();
    await admin.query("CREATE DATABASE cron_partman");
    await admin.end();
    pool = new pg.Pool({ connectionString: server.url("cron_partman"), max: 4 });
    const client = await pool.connect();
    await installSchema(client).finally(() => client.release());
    const config = await testStoreConfig("local");
    cleanupStore = config.cleanup;
    bridge = await startTestBridge(server.url("cron_partman"), config.config);
  }, 60_000);

  afterAll(async () => {
    await bridge?.stop();
    await pool?.end();
    await server?.stop();
    await cleanupStore?.();
  });

  it("a scheduled CALL partman.run_maintenance_proc() drops offloaded partitions and premakes", async () => {
    await setUpPartman(pool);
    await pool.query("CREATE EXTENSION pg_cron");
    await createPartmanTable(pool, "clicks");
    const before = await rowsByPartition(pool, "clicks");
    await pool.query(
      "SELECT offload.define_policy('cold_after_3d', 'created_at', interval '3 days')",
    );
    await pool.query("SELECT offload.attach_policy('clicks', 'cold_after_3d')");
    expect((await offloadNow(pool, "clicks")).state).toBe("succeeded");
    const offloaded = [...(await partitionKinds(pool, "clicks"))]
      .filter(([, kind]) => kind === "p")
      .map(([name]) => name);
    await pool.query(
      `UPDATE partman.part_config SET premake = 6, retention = '7 days', retention_keep_table = false
        WHERE parent_table = 'public.clicks'`,
    );

    const scheduledAt = new Date(Date.now() - 1000);
    await pool.query(
      "SELECT cron.schedule('partman-maintenance', '* * * * *', 'CALL partman.run_maintenance_proc()')",
    );
    // pg_cron 1.4 runs jobs on the minute: the first run starts within 60 s.
    await waitUntil(
      async () =>
        (
          await pool.query(
            `SELECT count(*)::int AS n FROM cron.job_run_details
              WHERE status IN ('succeeded', 'failed') AND start_time >= $1`,
            [scheduledAt],
          )
        ).rows[0].n > 0,
      { timeoutMs: 90_000 },
    );
    await pool.query("SELECT cron.unschedule('partman-maintenance')");
    const { rows: runs } = await pool.query(
      "SELECT status, return_message FROM cron.job_run_details ORDER BY runid",
    );
    expect(runs[0]).toMatchObject({ status: "succeeded" });

    const parts = await partitionKinds(pool, "clicks");
    const dropped = offloaded.filter((n) => !parts.has(n));
    expect(dropped.length).toBeGreaterThanOrEqual(5);
    expect(futurePartitions(parts, "clicks").length).toBeGreaterThanOrEqual(6);
    const segments = await segmentsOf(pool, "clicks");
    for (const s of segments) {
      const gone = dropped.includes(s.partition_name);
      expect(s).toMatchObject(
        gone ? { state: "retired", exists: false } : { state: "committed", exists: true },
      );
    }
    const expected = [...before]
      .filter(([part]) => parts.has(part))
      .flatMap(([, rows]) => rows)
      .sort((a, b) => Number(a.slice(1, a.indexOf(","))) - Number(b.slice(1, b.indexOf(","))));
    expect(await allRows(pool, "clicks")).toEqual(expected);
  });
});
