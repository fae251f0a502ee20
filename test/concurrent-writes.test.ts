import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningBridge } from "../bridge/bridge.ts";
import {
  offloadNow,
  startTestBridge,
  testStoreConfig,
  waitForJob,
} from "./support/bridge-harness.ts";
import { duplicatedIds, tableDigest } from "./support/digest.ts";
import { fixture } from "./support/fixtures.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

/**
 * A table of the events fixture's shape holding the rows `rows` (a SELECT) selects, with the
 * fixture's policy attached: each case offloads and writes to a table of its own, so that no case
 * sees another's rows or segments.
 */
async function ownTable(db: TestDatabase, name: string, rows: string): Promise<void> {
  await db.pool.query(`CREATE TABLE ${name} (LIKE events INCLUDING ALL)`);
  await db.pool.query(`INSERT INTO ${name} ${rows}`);
  await db.pool.query(`ANALYZE ${name}`);
  await db.pool.query("SELECT offload.attach_policy($1, 'cold_after_30d')", [name]);
}

describe("writes while an offload runs", () => {
  let db: TestDatabase;
  let bridge: RunningBridge;
  let cleanupStore: () => Promise<void>;

  beforeAll(async () => {
    db = await createTestDatabase("concurrent");
    const store = await testStoreConfig("local");
    cleanupStore = store.cleanup;
    bridge = await startTestBridge(db.url, store.config, {
      // Concurrent updates make commits fail until they stop: allow many quick retries.
      overrides: {
        segmentTargetBytes: 128 * 1024,
        chunkBytes: 16 * 1024,
        maxAttempts: 50,
        commitLockTimeoutMs: 300,
      },
    });
    // The template of every case's table (ownTable); no case offloads or changes it.
    await db.pool.query(fixture("events-table.sql"));
  });

  afterAll(async () => {
    await bridge?.stop();
    await db?.drop();
    await cleanupStore?.();
  });

  it("inserts into the cold and hot ranges during an offload are neither lost nor duplicated", async () => {
    await ownTable(db, "inserts", "SELECT * FROM events");
    const { rows } = await db.pool.query("SELECT offload.run('inserts') AS id");
    const jobId = Number(rows[0].id);
    let nextId = 1_000_000;
    const inserted: number[] = [];
    let finished = false;
    const finishedJob = waitForJob(db.pool, jobId).finally(() => (finished = true));
    while (!finished) {
      // Alternate rows far in the past (inside ranges being offloaded) and rows that stay hot.
      const id = nextId++;
      const age = id % 2 === 0 ? "150 days" : "1 hour";
      await db.pool.query(
        `INSERT INTO inserts VALUES ($1::bigint, now() - $2::interval, 'concurrent', '{}')`,
        [id, age],
      );
      inserted.push(id);
    }
    const job = await finishedJob;
    expect(job.state).toBe("succeeded");
    expect(inserted.length).toBeGreaterThan(10);

    const { rows: found } = await db.pool.query(
      "SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM inserts WHERE id >= 1000000",
    );
    expect(found[0]).toEqual({ n: inserted.length, d: inserted.length });
    const total = await db.pool.query("SELECT count(*)::int AS n FROM inserts");
    expect(total.rows[0].n).toBe(20000 + inserted.length);
    expect(await duplicatedIds(db.pool, "inserts")).toBe(0);

    // Late rows in already offloaded ranges stayed hot; the next run takes them.
    const late = await db.pool.query(
      "SELECT count(*)::int AS n FROM ONLY inserts WHERE created_at < now() - interval '31 days'",
    );
    const second = await offloadNow(db.pool, "inserts");
    expect(second.state).toBe("succeeded");
    expect(Number(second.rows_done)).toBe(late.rows[0].n);
    const after = await db.pool.query("SELECT count(*)::int AS n FROM inserts");
    expect(after.rows[0].n).toBe(20000 + inserted.length);
    expect(await duplicatedIds(db.pool, "inserts")).toBe(0);
  });

  it("an update of a copied row during the offload makes that segment retry, never lose the update", async () => {
    await ownTable(
      db,
      "updates",
      "SELECT 2000000 + i, now() - interval '60 days' + i * interval '1 s', 'upd', '{}' FROM generate_series(1, 3000) i",
    );
    const { rows } = await db.pool.query("SELECT offload.run('updates') AS id");
    const jobId = Number(rows[0].id);
    let finished = false;
    const finishedJob = waitForJob(db.pool, jobId).finally(() => (finished = true));
    let updates = 0;
    while (!finished) {
      const result = await db.pool.query(
        "UPDATE ONLY updates SET kind = 'updated' WHERE id = (SELECT min(id) FROM ONLY updates WHERE kind = 'upd')",
      );
      updates += result.rowCount ?? 0;
    }
    const job = await finishedJob;
    expect(job.state).toBe("succeeded");
    const { rows: counted } = await db.pool.query(
      "SELECT count(*) FILTER (WHERE kind = 'updated')::int AS updated, count(*)::int AS n FROM updates",
    );
    expect(counted[0]).toEqual({ updated: updates, n: 3000 });
    expect(await duplicatedIds(db.pool, "updates")).toBe(0);
  });

  it("never commits under a running query on the table: waits, and retries past the lock timeout", async () => {
    await ownTable(
      db,
      "locked",
      "SELECT 3000000 + i, now() - interval '45 days' + i * interval '1 s', 'locked', '{}' FROM generate_series(1, 500) i",
    );
    const before = await tableDigest(db.pool, "locked");
    const reader = await db.pool.connect();
    try {
      // A transaction that has read the table holds a lock the offload's commit must wait for.
      await reader.query("BEGIN");
      await reader.query("SELECT count(*) FROM locked");
      const { rows } = await db.pool.query("SELECT offload.run('locked') AS id");
      const jobId = Number(rows[0].id);
      let job: { attempts: number; retries: number; last_error: string | null } | undefined;
      for (let i = 0; i < 100; i++) {
        job = (await db.pool.query("SELECT * FROM offload.jobs WHERE id = $1", [jobId])).rows[0];
        if (job && job.retries >= 1) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(job?.last_error).toMatch(/lock timeout/);
      await reader.query("COMMIT");
      // Waiting for other sessions' queries used no attempt of the job's limit.
      expect(await waitForJob(db.pool, jobId)).toMatchObject({ state: "succeeded", attempts: 1 });
    } finally {
      reader.release();
    }
    expect(await tableDigest(db.pool, "locked")).toBe(before);
    const { rows } = await db.pool.query(
      "SELECT count(*)::int AS n FROM ONLY locked WHERE kind = 'locked'",
    );
    expect(rows[0].n).toBe(0);
  });
});
