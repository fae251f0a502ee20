import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testStoreConfig, waitForJob } from "./support/bridge-harness.ts";
import { quickBridgeEnv, spawnBridge } from "./support/bridge-process.ts";
import { fixture } from "./support/fixtures.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";
import { waitUntil } from "./support/wait.ts";

// A rewrite reads and writes a segment in one transaction (rolled back: user code ran in it) and
// swaps the new epoch in with a second one. An ALTER TABLE that lands between the two must not
// let the swap record an epoch written with the old columns: the swap refuses, the job retries,
// and the retry writes the rows with the columns of now.
describe("a column added between a rewrite's copy and its swap", () => {
  let db: TestDatabase;
  let cleanupStore: () => Promise<void>;
  let scratch: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase("rewrite-columns");
    const store = await testStoreConfig("local");
    cleanupStore = store.cleanup;
    if (store.config.kind !== "local") throw new Error("unreachable");
    scratch = await mkdtemp(join(tmpdir(), "pgo-rewrite-columns-"));
    env = quickBridgeEnv(db.url, store.config.dir);
    await db.pool.query(fixture("events-table.sql"));
  });

  afterAll(async () => {
    await db?.drop();
    await cleanupStore?.();
    await rm(scratch, { recursive: true, force: true });
  });

  it("makes the swap refuse the old epoch; the retry writes the rows with the new column", async () => {
    const offloader = spawnBridge(env);
    try {
      await offloader.started();
      const { rows } = await db.pool.query("SELECT offload.run('events') AS id");
      expect(await waitForJob(db.pool, Number(rows[0].id))).toMatchObject({ state: "succeeded" });
    } finally {
      await offloader.kill("SIGTERM");
    }
    const resume = join(scratch, "resume");
    const paused = spawnBridge({
      ...env,
      PGOFFLOAD_FAILPOINT: "before-swap@1:pause",
      PGOFFLOAD_FAILPOINT_RESUME: resume,
    });
    try {
      await paused.started();
      const { rows } = await db.pool.query(
        "SELECT offload.delete_cold('events', 'id % 10 = 0') AS id",
      );
      const jobId = Number(rows[0].id);
      await waitUntil(async () => paused.output().includes("before-swap@1:pause reached"), {
        context: () => paused.output(),
      });
      // The copy's transaction is over: the ALTER does not wait for it.
      await db.pool.query("ALTER TABLE events ADD COLUMN note text DEFAULT 'added later'");
      await writeFile(resume, "");
      const job = await waitForJob(db.pool, jobId);
      expect(job).toMatchObject({ state: "succeeded", last_error: null });
      expect(Number((job as unknown as { retries: number }).retries)).toBeGreaterThanOrEqual(1);
    } finally {
      await paused.kill("SIGTERM");
    }
    const reader = spawnBridge(env);
    try {
      await reader.started();
      const { rows } = await db.pool.query(
        `SELECT count(*) FILTER (WHERE id % 10 = 0)::int AS matching,
                count(*) FILTER (WHERE note IS DISTINCT FROM 'added later')::int AS wrong_note
           FROM events WHERE tableoid <> 'events'::regclass`,
      );
      expect(rows[0]).toEqual({ matching: 0, wrong_note: 0 });
    } finally {
      await reader.kill("SIGTERM");
    }
  });
});
