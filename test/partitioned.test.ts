import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
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
import { query } from "../bridge/sql-files.ts";
import { fixture, partitionsOf, resultSet } from "./support/fixtures.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

const RECENT = new Date(Date.now() - 7 * 86_400_000).toISOString();
const QUERIES = [
  "SELECT * FROM metrics ORDER BY id",
  "SELECT device, count(*), sum(reading), max(created_at) FROM metrics GROUP BY device ORDER BY device",
  "SELECT tableoid <> 0 AS t, count(*) FROM metrics WHERE note LIKE E'n\\t1%' GROUP BY 1",
];

/** The partitions of metrics, by name. */
const partitions = (db: TestDatabase | pg.PoolClient) =>
  partitionsOf("pool" in db ? db.pool : db, "metrics");

describe.each<StoreKind>(["local", "s3"])("partitioned tables on the %s store", (storeKind) => {
  let db: TestDatabase;
  let bridge: RunningBridge;
  let store: FaultyStore;
  let cleanupStore: () => Promise<void>;
  const before = new Map<string, string[]>();
  // The preview, the partitions then and the offload's job, all from beforeAll: every case reads
  // the one offload, and a case that changes the table does so in a transaction it rolls back.
  let preview: Array<{ partition_table: string; rows: string }>;
  let partitionsAtPreview: Array<{ name: string; kind: string }>;
  let job: JobRow;

  beforeAll(async () => {
    db = await createTestDatabase(`partitioned-${storeKind}`);
    const config = await testStoreConfig(storeKind);
    cleanupStore = config.cleanup;
    store = new FaultyStore(openStore(config.config));
    bridge = await startTestBridge(db.url, config.config, { objectStore: store });
    await db.pool.query(fixture("partitioned-table.sql"));
    for (const sql of QUERIES) before.set(sql, await resultSet(db.pool, sql));
    await db.pool.query(
      "SELECT offload.define_policy('cold_60d', 'created_at', interval '60 days', zone_map_columns => '{id}')",
    );
    await db.pool.query("SELECT offload.attach_policy('metrics', 'cold_60d')");
    preview = (await db.pool.query("SELECT * FROM offload.preview('metrics')")).rows;
    partitionsAtPreview = await partitions(db);
    job = await offloadNow(db.pool, "metrics");
  });

  afterAll(async () => {
    await bridge?.stop();
    await db?.drop();
    await cleanupStore?.();
  });

  it("previews the partitions that are due, without changing anything", async () => {
    expect(preview.length).toBeGreaterThanOrEqual(5);
    expect(preview.map((r) => r.partition_table).join(",")).not.toMatch(/default/);
    expect(preview.reduce((sum, r) => sum + Number(r.rows), 0)).toBeGreaterThan(3000);
    expect(partitionsAtPreview.every((p) => p.kind === "r")).toBe(true);
  });

  it("replaces each due partition with a foreign partition of the same bounds, under its name", async () => {
    expect(job).toMatchObject({ state: "succeeded", segments_done: preview.length });
    const parts = await partitions(db);
    // The offloaded partition keeps its name and bounds as a partitioned table (so tools that
    // manage partitions by name, pg_partman's retention among them, drop or detach it as any
    // other); its one partition, with the same bounds, is the foreign table.
    const offloaded = parts.filter((p) => p.kind === "p");
    expect(offloaded.length).toBe(preview.length);
    const names = preview.map((p) => p.partition_table.replace(/^public\./, "").replace(/"/g, ""));
    expect(offloaded.map((p) => p.name).sort()).toEqual([...names].sort());
    const { rows: cold } = await db.pool.query(
      `SELECT h.relname AS holder, c.relname AS name, c.relkind AS kind,
              pg_get_expr(h.relpartbound, h.oid) AS holder_bound,
              pg_get_expr(c.relpartbound, c.oid) AS bound,
              (SELECT count(*)::int FROM pg_inherits WHERE inhparent = h.oid) AS partitions
         FROM pg_inherits hi JOIN pg_class h ON h.oid = hi.inhrelid
         JOIN pg_inherits ci ON ci.inhparent = h.oid JOIN pg_class c ON c.oid = ci.inhrelid
        WHERE hi.inhparent = 'metrics'::regclass ORDER BY h.relname`,
    );
    expect(cold.length).toBe(preview.length);
    for (const c of cold) {
      expect(c).toMatchObject({ kind: "f", partitions: 1, bound: c.holder_bound });
      expect(c.name).toMatch(new RegExp(`^${c.holder}__offloaded_\\d+$`));
    }
    expect(cold.map((p) => p.name).join()).toMatch(/metrics_p\d{8}__offloaded_/);
    expect(parts.find((p) => p.name === "metrics_default")?.kind).toBe("r");
    const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM metrics_default");
    expect(rows[0].n).toBe(2);
  });

  it("offload.tables counts the hot partitions' rows and bytes, the cold ones as segments", async () => {
    // The fixture analyzed the table (and so its partitions) before the offload.
    const { rows } = await db.pool.query(
      `SELECT t.hot_rows_estimate, t.hot_bytes, t.cold_rows,
              (SELECT sum(pg_table_size(p.oid))
                 FROM pg_partition_tree('metrics') tr JOIN pg_class p ON p.oid = tr.relid
                WHERE tr.isleaf AND p.relkind = 'r') AS heap_bytes
         FROM offload.tables t WHERE t.table_name = 'metrics'::regclass`,
    );
    const hot = await db.pool.query(
      `SELECT count(*)::bigint AS n FROM metrics m
        WHERE (SELECT relkind FROM pg_class WHERE oid = m.tableoid) = 'r'`,
    );
    // Was the parent's own figures: no estimate (or a stale one counting the rows now cold) and
    // 0 bytes, since a partitioned table's own pg_class row holds no rows and no storage.
    expect(rows[0].hot_rows_estimate).toBe(hot.rows[0].n);
    expect(Number(rows[0].hot_rows_estimate)).toBeGreaterThan(0);
    expect(rows[0].hot_bytes).toBe(rows[0].heap_bytes);
    expect(Number(rows[0].hot_bytes)).toBeGreaterThan(0);
    expect(Number(rows[0].cold_rows)).toBeGreaterThan(0);
  });

  it("answers every query exactly as before", async () => {
    for (const sql of QUERIES) expect(await resultSet(db.pool, sql), sql).toEqual(before.get(sql));
  });

  it("prunes cold partitions for the hot range, at plan time and at run time", async () => {
    const plan = await db.pool.query(
      `EXPLAIN SELECT count(*) FROM metrics WHERE created_at > '${RECENT}'`,
    );
    expect(plan.rows.map((r) => r["QUERY PLAN"]).join("\n")).not.toMatch(/Foreign Scan/);
    const reads = store.calls.get;
    await db.pool.query(`SELECT count(*) FROM metrics WHERE created_at > '${RECENT}'`);
    await db.pool.query(
      "SELECT count(*) FROM metrics WHERE created_at > now() - interval '7 days'",
    );
    expect(store.calls.get).toBe(reads);
  });

  it("prunes by zone map too: a WHERE on a zone-map column skips segments that cannot hold it", async () => {
    const plan = await db.pool.query("EXPLAIN SELECT * FROM metrics WHERE id = 5700");
    expect(plan.rows.map((r) => r["QUERY PLAN"]).join("\n")).not.toMatch(/Foreign Scan/);
    const oldId = await db.pool.query("EXPLAIN SELECT * FROM metrics WHERE id = 10");
    expect(
      oldId.rows
        .map((r) => r["QUERY PLAN"])
        .join("\n")
        .match(/Foreign Scan/g),
    ).toHaveLength(1);
  });

  it("refuses an INSERT routed to an offloaded partition with PostgreSQL's error", async () => {
    const old = new Date(Date.now() - 200 * 86_400_000).toISOString();
    await expect(
      db.pool.query(`INSERT INTO metrics VALUES (999999, '${old}', 1, 1, 'late')`),
    ).rejects.toThrow(/foreign table "metrics.*__offloaded_\d+"/);
    await inRolledBackTransaction(db, async (client) => {
      await client.query("INSERT INTO metrics VALUES (999999, now(), 1, 1, 'fresh')");
    });
  });

  it("runs UPDATE/DELETE that prune every cold partition, and refuses the others", async () => {
    await inRolledBackTransaction(db, async (client) => {
      await client.query("INSERT INTO metrics VALUES (999999, now(), 1, 1, 'fresh')");
      const updated = await client.query(
        `UPDATE metrics SET note = 'touched' WHERE id = 999999 AND created_at > '${RECENT}'`,
      );
      expect(updated.rowCount).toBe(1);
      const deleted = await client.query(
        `DELETE FROM metrics WHERE id = 999999 AND created_at > '${RECENT}'`,
      );
      expect(deleted.rowCount).toBe(1);
    });
    await expect(db.pool.query("DELETE FROM metrics WHERE id = 10")).rejects.toThrow(
      /cannot delete from foreign table "metrics.*__offloaded_\d+"|foreign table "metrics.*__offloaded_\d+" does not allow deletes/,
    );
    await expect(db.pool.query("UPDATE metrics SET note = 'x' WHERE device = 3")).rejects.toThrow(
      /foreign table "metrics.*__offloaded_\d+"/,
    );
    expect(await resultSet(db.pool, QUERIES[0]!)).toEqual(before.get(QUERIES[0]!));
  });
  it("delete_cold and update_cold leave an offloaded partition detached from the table alone", async () => {
    await inRolledBackTransaction(db, async (client) => {
      const table = (await client.query("SELECT 'metrics'::regclass::oid AS oid")).rows[0].oid;
      const candidates = async () =>
        (await client.query(query("rewrite-candidates"), [table, 0])).rows.map((r) => r.id);
      const all = await candidates();
      const cold = (await partitions(client)).find((p) => p.kind === "p")!;
      await client.query(
        `ALTER TABLE metrics DETACH PARTITION ${client.escapeIdentifier(cold.name)}`,
      );
      const detached = (
        await client.query(
          `SELECT s.id FROM offload.segments s JOIN pg_inherits i ON i.inhrelid = s.segment_table
            WHERE i.inhparent = $1::regclass`,
          [client.escapeIdentifier(cold.name)],
        )
      ).rows.map((r) => r.id);
      expect(detached).toHaveLength(1);
      expect(await candidates()).toEqual(all.filter((id) => !detached.includes(id)));
    });
  });

  it("load_back turns cold partitions back into heap partitions with their old names and bounds", async () => {
    const namesBefore = preview.map((p) =>
      p.partition_table.replace(/^public\./, "").replace(/"/g, ""),
    );
    // Rolled back: the catalog and the partitions return to cold for the other cases (the
    // segments' objects stay in the store, which only garbage collection removes).
    await inRolledBackTransaction(db, async (client) => {
      const { rows } = await client.query("SELECT offload.load_back('metrics') AS n");
      expect(Number(rows[0].n)).toBeGreaterThan(3000);
      const parts = await partitions(client);
      expect(parts.every((p) => p.kind === "r")).toBe(true);
      for (const name of namesBefore) expect(parts.map((p) => p.name)).toContain(name);
      expect(await resultSet(client, QUERIES[0]!)).toEqual(before.get(QUERIES[0]!));
      const old = new Date(Date.now() - 200 * 86_400_000).toISOString();
      await client.query(`INSERT INTO metrics VALUES (999998, '${old}', 1, 1, 'late')`);
      await client.query("DELETE FROM metrics WHERE id = 999998");
      const indexes = await client.query(
        `SELECT count(*)::int AS n FROM pg_inherits i JOIN pg_index x ON x.indrelid = i.inhrelid
          WHERE i.inhparent = 'metrics'::regclass`,
      );
      expect(indexes.rows[0].n).toBe(parts.length);
    });
  });
});

/** Runs `work` on one connection in a transaction that is always rolled back. */
async function inRolledBackTransaction(
  db: TestDatabase,
  work: (client: pg.PoolClient) => Promise<void>,
): Promise<void> {
  const client = await db.pool.connect();
  try {
    await client.query("BEGIN");
    await work(client);
  } finally {
    await client.query("ROLLBACK");
    client.release();
  }
}
