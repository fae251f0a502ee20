import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningBridge } from "../bridge/bridge.ts";
import { startTestBridge, testStoreConfig, waitForJob } from "./support/bridge-harness.ts";
import { spawnBridge } from "./support/bridge-process.ts";
import { duplicatedIds, tableDigest } from "./support/digest.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";
import type { StoreConfig } from "../storage/open-store.ts";

const TABLES = ["t1", "t2", "t3", "t4", "t5", "t6"];

function createTable(name: string): string {
  return `CREATE TABLE ${name} (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, v text);
    INSERT INTO ${name} SELECT i, now() - (6000 - i) * interval '1 hour', md5(i::text)
      FROM generate_series(1, 6000) i;
    SELECT offload.attach_policy('${name}', 'cold_30d');`;
}

describe("two bridges on one database", () => {
  let db: TestDatabase;
  let store: StoreConfig;
  let cleanupStore: () => Promise<void>;
  const bridges: RunningBridge[] = [];

  beforeAll(async () => {
    db = await createTestDatabase("two-bridges");
    const config = await testStoreConfig("local");
    store = config.config;
    cleanupStore = config.cleanup;
    await db.pool.query(
      "SELECT offload.define_policy('cold_30d', 'created_at', interval '30 days')",
    );
    for (const t of TABLES) await db.pool.query(createTable(t));
  });

  afterAll(async () => {
    for (const b of bridges) await b.stop();
    await db?.drop();
    await cleanupStore?.();
  });

  it("share the queue without ever running a job twice", async () => {
    const overrides = { segmentTargetBytes: 64 * 1024, jobLeaseMs: 1_500 };
    bridges.push(await startTestBridge(db.url, store, { overrides }));
    bridges.push(await startTestBridge(db.url, store, { overrides }));
    const digests = await Promise.all(TABLES.map((t) => tableDigest(db.pool, t)));
    const jobIds: number[] = [];
    for (const t of TABLES) {
      jobIds.push(Number((await db.pool.query("SELECT offload.run($1) AS id", [t])).rows[0].id));
    }
    for (const id of jobIds) {
      const job = await waitForJob(db.pool, id);
      expect(job).toMatchObject({ state: "succeeded", attempts: 1 });
    }
    for (const [i, t] of TABLES.entries()) {
      expect(await tableDigest(db.pool, t)).toBe(digests[i]);
      expect(await duplicatedIds(db.pool, t)).toBe(0);
    }
    // No key range was written twice: committed segments of a table never overlap.
    const { rows } = await db.pool.query(`
      SELECT count(*)::int AS n FROM offload.segments a JOIN offload.segments b
          ON a.table_id = b.table_id AND a.id < b.id
       WHERE a.state = 'committed' AND b.state = 'committed'
         AND a.range_lo::timestamptz < b.range_hi::timestamptz
         AND b.range_lo::timestamptz < a.range_hi::timestamptz`);
    expect(rows[0].n).toBe(0);
    const workers = await db.pool.query(
      "SELECT count(DISTINCT locked_by)::int AS n FROM offload.jobs",
    );
    expect(workers.rows[0].n).toBeGreaterThanOrEqual(1);
  });

  it("take over the job of a bridge that died, once its lease expires", async () => {
    await db.pool.query(
      "CREATE TABLE t7 (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, v text)",
    );
    await db.pool.query(
      "INSERT INTO t7 SELECT i, now() - (6000 - i) * interval '1 hour', md5(i::text) FROM generate_series(1, 6000) i",
    );
    await db.pool.query("SELECT offload.attach_policy('t7', 'cold_30d')");
    const digest = await tableDigest(db.pool, "t7");
    // Only the doomed bridge runs while the job is claimed; the others are stopped meanwhile.
    for (const b of bridges.splice(0)) await b.stop();
    if (store.kind !== "local") throw new Error("unreachable");
    const doomed = spawnBridge({
      PGOFFLOAD_DATABASE_URL: db.url,
      PGOFFLOAD_STORE: "local",
      PGOFFLOAD_STORE_DIR: store.dir,
      PGOFFLOAD_SEGMENT_BYTES: String(64 * 1024),
      PGOFFLOAD_CHUNK_BYTES: String(16 * 1024),
      PGOFFLOAD_SCHEDULE_MS: "0",
      PGOFFLOAD_POLL_MS: "200",
      PGOFFLOAD_WORKER_ID: "doomed-bridge",
      PGOFFLOAD_FAILPOINT: "after-chunk-upload@3",
    });
    const jobId = Number((await db.pool.query("SELECT offload.run('t7') AS id")).rows[0].id);
    expect((await doomed.exited).signal, doomed.output()).toBe("SIGKILL");
    const stale = await db.pool.query("SELECT state, locked_by FROM offload.jobs WHERE id = $1", [
      jobId,
    ]);
    expect(stale.rows[0]).toEqual({ state: "running", locked_by: "doomed-bridge" });

    bridges.push(await startTestBridge(db.url, store, { overrides: { jobLeaseMs: 1_500 } }));
    const job = await waitForJob(db.pool, jobId);
    // The killed run is retried without using an attempt of the job's limit.
    expect(job).toMatchObject({ state: "succeeded", attempts: 1, retries: 1 });
    expect(await tableDigest(db.pool, "t7")).toBe(digest);
    expect(await duplicatedIds(db.pool, "t7")).toBe(0);
  });
});
