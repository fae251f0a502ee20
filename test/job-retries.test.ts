import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RunningBridge } from "../bridge/bridge.ts";
import { FaultyStore } from "../storage/faulty-store.ts";
import { openStore } from "../storage/open-store.ts";
import {
  offloadNow,
  startTestBridge,
  testStoreConfig,
  waitForJob,
} from "./support/bridge-harness.ts";
import { duplicatedIds, tableDigest } from "./support/digest.ts";
import { fixture, segmentTables } from "./support/fixtures.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

describe.each(["local", "s3"] as const)(
  "jobs on the %s store: retries, limits, schedule",
  (kind) => {
    let db: TestDatabase;
    let bridge: RunningBridge | undefined;
    let store: FaultyStore;
    let cleanupStore: () => Promise<void>;
    let digest: string;

    beforeEach(async () => {
      db = await createTestDatabase(`retries-${kind}`);
      const config = await testStoreConfig(kind);
      cleanupStore = config.cleanup;
      store = new FaultyStore(openStore(config.config));
      await db.pool.query(fixture("events-table.sql"));
      digest = await tableDigest(db.pool, "events");
      bridge = await startTestBridge(db.url, config.config, {
        objectStore: store,
        overrides: { maxAttempts: 3 },
      });
    });

    afterEach(async () => {
      await bridge?.stop();
      await db?.drop();
      await cleanupStore?.();
    });

    it("a failed upload fails the attempt; the job retries and completes, losing nothing", async () => {
      store.failNext("put", 1).failNext("put", 1, undefined, { afterCall: true });
      const job = await offloadNow(db.pool, "events");
      expect(job).toMatchObject({ state: "succeeded", attempts: 3 });
      expect(await tableDigest(db.pool, "events")).toBe(digest);
      expect(await duplicatedIds(db.pool, "events")).toBe(0);
      const { rows } = await db.pool.query(
        "SELECT state, count(*)::int AS n FROM offload.segments GROUP BY state ORDER BY state",
      );
      expect(rows.find((r) => r.state === "aborted")?.n).toBe(2);
    });

    it("a store that keeps failing: the job fails after its attempt limit with the error, rows stay hot", async () => {
      store.failKeys(() => true, "put");
      const job = await offloadNow(db.pool, "events");
      expect(job.state).toBe("failed");
      expect(job.attempts).toBe(3);
      expect(job.last_error).toMatch(/unavailable|injected/i);
      expect(await segmentTables(db.pool, "events")).toEqual([]);
      const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM ONLY events");
      expect(rows[0].n).toBe(20000);
      const pending = await db.pool.query(
        "SELECT count(*)::int AS n FROM offload.segments WHERE state <> 'aborted'",
      );
      expect(pending.rows[0].n).toBe(0);
    });

    it("a job failing with errors that have no message still records what failed", async () => {
      // As Piscina handed a worker's DataCloneError back on Node 22: an Error with only a stack.
      const cloned = new Error();
      cloned.stack = "DataCloneError: Cannot transfer object of unsupported type.\n    at x";
      store.failNext("put", 1, cloned).failNext("put", 2, () => new Error());
      const job = await offloadNow(db.pool, "events");
      expect(job).toMatchObject({ state: "failed", attempts: 3 });
      expect(job.last_error).toMatch(/^Error with no message, thrown at /);
      const retried = await db.pool.query(
        "SELECT count(*)::int AS n FROM offload.segments WHERE state = 'aborted'",
      );
      expect(retried.rows[0].n).toBe(3);
      expect(await segmentTables(db.pool, "events")).toEqual([]);
    });

    it("a job failing with an error cloned from a thread records the error's stack headline", async () => {
      const cloned = new Error();
      cloned.stack = "DataCloneError: Cannot transfer object of unsupported type.\n    at x";
      store.failKeys(() => true, "put", cloned);
      const job = await offloadNow(db.pool, "events");
      expect(job).toMatchObject({
        state: "failed",
        attempts: 3,
        last_error: "DataCloneError: Cannot transfer object of unsupported type.",
      });
    });

    it("the schedule queues and runs attached tables without offload.run()", async () => {
      await bridge?.stop();
      const config = await testStoreConfig(kind);
      bridge = await startTestBridge(db.url, config.config, {
        overrides: { scheduleIntervalMs: 300 },
      });
      let jobId: number | undefined;
      for (let i = 0; i < 100 && jobId === undefined; i++) {
        const { rows } = await db.pool.query("SELECT id, requested_by FROM offload.jobs");
        if (rows[0]) {
          expect(rows[0].requested_by).toBe("pg-offload schedule");
          jobId = Number(rows[0].id);
        } else await new Promise((r) => setTimeout(r, 100));
      }
      expect(jobId).toBeDefined();
      expect((await waitForJob(db.pool, jobId!)).state).toBe("succeeded");
      expect(await tableDigest(db.pool, "events")).toBe(digest);
      // With nothing due any more, later rounds of the schedule queue nothing.
      await new Promise((r) => setTimeout(r, 1_000));
      const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM offload.jobs");
      expect(rows[0].n).toBe(1);
    });
  },
);
