import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CountingStore } from "../../storage/counting-store.ts";
import { openStore } from "../../storage/open-store.ts";
import { offloadNow, startTestBridge, testStoreConfig } from "../support/bridge-harness.ts";
import { quickBridgeEnv, spawnBridge } from "../support/bridge-process.ts";
import { duplicatedIds, tableDigest } from "../support/digest.ts";
import { expectColdReadFailure, fixture } from "../support/fixtures.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";
import { waitUntil } from "../support/wait.ts";

// Pulls a row every 0.3 ms: the segment's stream is still being served long after the start.
const SLOW_SCAN =
  "SELECT count(pg_sleep(0.0003)) FROM events WHERE created_at < now() - interval '30 days'";

describe("a bridge stopping", () => {
  let db: TestDatabase;
  let store: Awaited<ReturnType<typeof testStoreConfig>>;

  // Each case its own database and store, events all hot: a case offloads what it reads cold.
  beforeEach(async () => {
    db = await createTestDatabase("graceful-stop");
    store = await testStoreConfig("local");
    await db.pool.query(fixture("events-table.sql"));
  });

  afterEach(async () => {
    await db?.drop();
    await store?.cleanup();
  });

  it("fails a scan still running after the grace period, saying why", async () => {
    const bridge = await startTestBridge(db.url, store.config, {
      overrides: { shutdownGraceMs: 300 },
    });
    try {
      expect((await offloadNow(db.pool, "events")).state).toBe("succeeded");
      const scan = db.pool.query(SLOW_SCAN);
      scan.catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 300));
      await bridge.stop();
      await expectColdReadFailure(scan, "the bridge stopped while serving");
    } finally {
      await bridge.stop();
    }
  });

  it("lets a scan finish within the grace period", async () => {
    const counting = new CountingStore(openStore(store.config));
    const bridge = await startTestBridge(db.url, store.config, {
      overrides: { shutdownGraceMs: 60_000 },
      objectStore: counting,
    });
    try {
      expect((await offloadNow(db.pool, "events")).state).toBe("succeeded");
      counting.take();
      // 3,000 cold rows (ids below 5,000 are months old), each pulled at least 0.1 ms apart.
      const scan = db.pool.query(
        "SELECT count(pg_sleep(0.0001)) FROM (SELECT * FROM events WHERE id < 5000 LIMIT 3000) e",
      );
      let settled = false;
      void scan.then(
        () => (settled = true),
        () => (settled = true),
      );
      // The bridge has fetched a chunk for it: the scan is being served.
      await waitUntil(async () => counting.take().gets > 0);
      // Read at the moment the stop begins: a scan already over would make the case prove nothing.
      const runningWhenStopBegan = !settled;
      await bridge.stop();
      expect(runningWhenStopBegan).toBe(true);
      expect((await scan).rows[0].count).toBe("3000");
    } finally {
      await bridge.stop();
    }
  });

  it("a second SIGTERM fails a scan being served with the bridge's message, not a half-written row", async () => {
    const scratch = await mkdtemp(join(tmpdir(), "pgo-stop-"));
    const resumeFile = join(scratch, "resume");
    await db.pool.query("CREATE TABLE forced (LIKE events INCLUDING ALL)");
    await db.pool.query("INSERT INTO forced SELECT * FROM events");
    await db.pool.query("SELECT offload.attach_policy('forced', 'cold_after_30d')");
    const env = {
      ...quickBridgeEnv(db.url, store.config.kind === "local" ? store.config.dir : ""),
      // One segment, far larger than the socket and pipe buffers between bridge and PostgreSQL:
      // it is still being written when the signals come. The first signal leaves scans a minute.
      PGOFFLOAD_SEGMENT_BYTES: String(64 * 1024 * 1024),
      PGOFFLOAD_SHUTDOWN_GRACE_MS: "60000",
      PGOFFLOAD_FAILPOINT: "after-chunk-served@1:pause",
      PGOFFLOAD_FAILPOINT_RESUME: resumeFile,
    };
    const bridge = spawnBridge(env);
    try {
      await bridge.started();
      expect((await offloadNow(db.pool, "forced")).state).toBe("succeeded");
      const scan = db.pool.query(SLOW_SCAN.replace("FROM events", "FROM forced"));
      scan.catch(() => {});
      // The bridge has served the segment's first chunk and stands still.
      await waitUntil(async () => bridge.output().includes("pausing"), {
        context: () => bridge.output(),
      });
      // Both signals while it stands still (of two kinds, so that they cannot merge into one):
      // it handles them as it resumes, the scan certainly still being served, however slowly
      // this test runs.
      bridge.child.kill("SIGINT");
      bridge.child.kill("SIGTERM");
      await writeFile(resumeFile, "");
      await waitUntil(async () => bridge.output().includes('"second signal: exiting now"'), {
        context: () => bridge.output(),
      });
      expect(await bridge.exited).toEqual({ code: 1, signal: null });
      await expectColdReadFailure(scan, "the bridge stopped while serving");
    } finally {
      await bridge.kill();
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it("on SIGTERM, stops a running job at a safe point and queues it again for the next bridge", async () => {
    const scratch = await mkdtemp(join(tmpdir(), "pgo-stop-"));
    try {
      const before = await tableDigest(db.pool, "events");
      const env = quickBridgeEnv(db.url, store.config.kind === "local" ? store.config.dir : "");
      const resumeFile = join(scratch, "resume");
      const bridge = spawnBridge({
        ...env,
        PGOFFLOAD_FAILPOINT: "after-chunk-upload@2:pause",
        PGOFFLOAD_FAILPOINT_RESUME: resumeFile,
      });
      const { rows } = await db.pool.query("SELECT offload.run('events') AS id");
      const id = Number(rows[0].id);
      await waitUntil(async () => bridge.output().includes("pausing"), {
        context: () => bridge.output(),
      });
      bridge.child.kill("SIGTERM"); // handled once the pause ends
      await writeFile(resumeFile, "");
      expect(await bridge.exited).toEqual({ code: 0, signal: null });
      const job = (await db.pool.query("SELECT * FROM offload.jobs WHERE id = $1", [id])).rows[0];
      expect(job).toMatchObject({ state: "queued", attempts: 0 });
      expect(job.last_error).toMatch(/^stopped with bridge .*; queued again$/);
      // Segments committed before the stop are cold: the digest is taken with the next bridge up.

      const next = spawnBridge(env);
      try {
        await waitUntil(
          async () =>
            (await db.pool.query("SELECT state FROM offload.jobs WHERE id = $1", [id])).rows[0]
              .state === "succeeded",
          { timeoutMs: 30_000, context: () => next.output() },
        );
        expect(await tableDigest(db.pool, "events")).toBe(before);
        expect(await duplicatedIds(db.pool, "events")).toBe(0);
      } finally {
        await next.kill("SIGTERM");
      }
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
