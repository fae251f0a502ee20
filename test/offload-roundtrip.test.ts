import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningBridge } from "../bridge/bridge.ts";
import { FaultyStore } from "../storage/faulty-store.ts";
import { openStore } from "../storage/open-store.ts";
import {
  offloadNow,
  startTestBridge,
  testStoreConfig,
  type JobRow,
  type StoreKind,
} from "./support/bridge-harness.ts";
import { fixture, resultSet, segmentTables } from "./support/fixtures.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

const HUNDRED_DAYS_AGO = new Date(Date.now() - 100 * 86_400_000).toISOString();

// Queries whose answers must not change when rows go cold.
const QUERIES = [
  "SELECT * FROM awkward ORDER BY id",
  "SELECT count(*), max(created_at), min(created_at), sum(amount) FILTER (WHERE amount <> 'NaN') FROM awkward",
  "SELECT feeling, count(*), avg(tiny), string_agg(label, '|' ORDER BY id) FROM awkward GROUP BY feeling ORDER BY feeling",
  "SELECT id, doc->'a', texts[1], blob FROM awkward WHERE label LIKE '%\\%' OR doc ? 'nl' ORDER BY id",
  "SELECT a.id, b.id FROM awkward a JOIN awkward b ON b.id = a.id + 1 WHERE a.id % 97 = 0 ORDER BY a.id",
  `SELECT * FROM awkward WHERE created_at < '${HUNDRED_DAYS_AGO}' ORDER BY id`,
];

describe.each<StoreKind>(["local", "s3"])("offload round trip on the %s store", (storeKind) => {
  let db: TestDatabase;
  let bridge: RunningBridge;
  let store: FaultyStore;
  let cleanupStore: () => Promise<void>;
  const before = new Map<string, string[]>();
  let beforeOddSession: string[];
  // The offload every case reads the result of; no case changes the table for the others.
  let job: JobRow;

  beforeAll(async () => {
    db = await createTestDatabase(`roundtrip-${storeKind}`);
    const storeConfig = await testStoreConfig(storeKind);
    cleanupStore = storeConfig.cleanup;
    store = new FaultyStore(openStore(storeConfig.config));
    bridge = await startTestBridge(db.url, storeConfig.config, {
      objectStore: store,
      overrides: { segmentTargetBytes: 128 * 1024, chunkBytes: 16 * 1024 },
    });
    await db.pool.query(fixture("awkward-table.sql"));
    await db.pool.query("ANALYZE awkward");
    for (const sql of QUERIES) before.set(sql, await resultSet(db.pool, sql));
    beforeOddSession = await inOddSession(db, QUERIES[0]!);
    await db.pool.query(
      "SELECT offload.define_policy('cold_after_30d', time_column => 'created_at', older_than => interval '30 days')",
    );
    await db.pool.query("SELECT offload.attach_policy('public.awkward', 'cold_after_30d')");
    job = await offloadNow(db.pool, "public.awkward");
  });

  afterAll(async () => {
    await bridge?.stop();
    await db?.drop();
    await cleanupStore?.();
  });

  it("offloads the rows older than the policy into several segments", async () => {
    expect(job).toMatchObject({ state: "succeeded", last_error: null });
    expect(job.segments_done).toBeGreaterThan(1);

    const hot = await db.pool.query(
      "SELECT count(*)::int AS n, min(created_at) > now() - interval '30 days' AS only_recent FROM ONLY awkward",
    );
    expect(hot.rows[0]).toEqual({ n: expect.any(Number), only_recent: true });
    // And the other side of the split: every cold row is older than the policy's 30 days.
    const cold = await db.pool.query(
      "SELECT count(*)::int AS n, bool_and(created_at < now() - interval '30 days') AS only_old FROM awkward WHERE tableoid <> 'awkward'::regclass",
    );
    expect(cold.rows[0]).toEqual({ n: 3000 - hot.rows[0].n, only_old: true });
    const segments = await segmentTables(db.pool, "awkward");
    expect(segments.length).toBe(job.segments_done);
    expect(segments[0]).toMatch(/^awkward__offloaded_\d+$/);

    const status = await db.pool.query("SELECT * FROM offload.tables");
    expect(status.rows).toHaveLength(1);
    expect(status.rows[0]).toMatchObject({ table_name: "awkward", policy: "cold_after_30d" });
    expect(Number(status.rows[0].cold_rows) + hot.rows[0].n).toBe(3000);
    expect(Number(status.rows[0].cold_stored_bytes)).toBeGreaterThan(0);
    expect(Number(job.rows_done)).toBe(Number(status.rows[0].cold_rows));
  });

  it("returns identical result sets for every query after offload", async () => {
    for (const sql of QUERIES) {
      expect(await resultSet(db.pool, sql), sql).toEqual(before.get(sql));
    }
  });

  it("reads the same values in a session with other date, interval, zone and output settings", async () => {
    expect(await inOddSession(db, QUERIES[0]!)).toEqual(beforeOddSession);
  });

  it("skips cold segments for a query on the hot range: no segment scan planned, no store read", async () => {
    const recent = new Date(Date.now() - 5 * 86_400_000).toISOString();
    const plan = await db.pool.query(
      `EXPLAIN SELECT count(*) FROM awkward WHERE created_at > '${recent}'`,
    );
    const text = plan.rows.map((r) => r["QUERY PLAN"]).join("\n");
    expect(text).not.toMatch(/Foreign Scan/);
    const readsBefore = store.calls.get;
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS n FROM awkward WHERE created_at > '${recent}'`,
    );
    expect(rows[0].n).toBeGreaterThan(0);
    expect(store.calls.get).toBe(readsBefore);
  });

  it("gives the planner row counts for segment tables without reading them", async () => {
    const { rows } = await db.pool.query(
      `SELECT s.rows::bigint AS stored, c.reltuples::bigint AS planned
         FROM offload.segments s JOIN pg_class c ON c.oid = s.segment_table WHERE s.state = 'committed'`,
    );
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(row.planned).toBe(row.stored);
  });

  it("keeps taking inserts, which stay hot, and a LIMIT on a cold scan stops early cleanly", async () => {
    // In a transaction rolled back: the other cases see the table as the offload left it.
    const client = await db.pool.connect();
    try {
      await client.query("BEGIN");
      await client.query(
        "INSERT INTO awkward (id, created_at, label) VALUES (100001, now(), 'new'), (100002, '2001-01-01', 'late')",
      );
      const { rows } = await client.query(
        "SELECT count(*)::int AS n FROM ONLY awkward WHERE id > 100000",
      );
      expect(rows[0].n).toBe(2);
      const limited = await client.query(
        "SELECT id FROM awkward WHERE created_at < '2025-01-01' LIMIT 2",
      );
      expect(limited.rows.length).toBe(2);
    } finally {
      await client.query("ROLLBACK");
      client.release();
    }
  });

  it("runs UPDATE/DELETE whose WHERE excludes every segment, and refuses the others clearly", async () => {
    const recent = new Date(Date.now() - 86_400_000).toISOString();
    await db.pool.query(`UPDATE awkward SET label = label WHERE created_at > '${recent}'`);
    await db.pool.query(`DELETE FROM awkward WHERE created_at > '${recent}' AND false`);
    await expect(db.pool.query("DELETE FROM awkward WHERE id = 5")).rejects.toThrow(
      // file_fdw, then postgres_fdw (servers not updatable): each refuses in its own words.
      /cannot delete from foreign table "awkward__offloaded_\d+"|foreign table "awkward__offloaded_\d+" does not allow deletes/,
    );
    await expect(db.pool.query("UPDATE awkward SET label = 'x' WHERE id = 5")).rejects.toThrow(
      /cannot update foreign table "awkward__offloaded_\d+"|foreign table "awkward__offloaded_\d+" does not allow updates/,
    );
    expect(await resultSet(db.pool, QUERIES[0]!)).toEqual(before.get(QUERIES[0]!));
  });

  it("a second run with nothing due changes nothing", async () => {
    const segments = await segmentTables(db.pool, "awkward");
    const job = await offloadNow(db.pool, "public.awkward");
    expect(job.state).toBe("succeeded");
    expect(await segmentTables(db.pool, "awkward")).toEqual(segments);
    expect(await resultSet(db.pool, QUERIES[0]!)).toEqual(before.get(QUERIES[0]!));
  });
});

// The segment reader parses COPY text in the querying session: its settings must not matter.
async function inOddSession(db: TestDatabase, sql: string): Promise<string[]> {
  const client = await db.pool.connect();
  try {
    await client.query(`SET DateStyle = 'SQL, DMY'; SET IntervalStyle = 'sql_standard';
      SET TimeZone = 'Asia/Kolkata'; SET extra_float_digits = 0; SET bytea_output = 'escape';
      SET client_encoding = 'UTF8'`);
    return await resultSet(client, sql);
  } finally {
    await client.query("RESET ALL");
    client.release();
  }
}
