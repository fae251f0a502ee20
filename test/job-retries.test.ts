import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RunningBridge } from "../bridge/bridge.ts";
import { FaultyStore } from "../storage/faulty-store.ts";
import type { ObjectKey, StoreCallOptions } from "../storage/object-store.ts";
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

/** A faulty store that also runs a test's hook before each put (to act while a job uploads). */
class HookedStore extends FaultyStore {
  beforePut: ((key: ObjectKey) => Promise<void>) | undefined;

  override async put(key: ObjectKey, body: Uint8Array, options?: StoreCallOptions): Promise<void> {
    await this.beforePut?.(key);
    return super.put(key, body, options);
  }
}

describe.each(["local", "s3"] as const)(
  "jobs on the %s store: retries, limits, schedule",
  (kind) => {
    let db: TestDatabase;
    let bridge: RunningBridge | undefined;
    let store: HookedStore;
    let cleanupStore: () => Promise<void>;
    let digest: string;

    beforeEach(async () => {
      db = await createTestDatabase(`retries-${kind}`);
      const config = await testStoreConfig(kind);
      cleanupStore = config.cleanup;
      store = new HookedStore(openStore(config.config));
      await db.pool.query(fixture("events-table.sql"));
      digest = await tableDigest(db.pool, "events");
      bridge = await startTestBridge(db.url, config.config, {
        objectStore: store,
        // One upload at a time: each injected fault then ends the attempt it falls in, and the
        // next fault falls in the next attempt (with uploads in parallel, a second fault could
        // hit another upload of the attempt the first one already failed).
        overrides: { maxAttempts: 3, segmentTargetBytes: 256 * 1024, uploadConcurrency: 1 },
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

    it("serialization failures are retried without using attempts; progress counts every attempt's segments once", async () => {
      // While the 3rd to 7th segments upload, every hot row is updated: the commit that deletes the
      // copied rows then fails with a serialization failure (40001), five times, more than the
      // attempt limit (3). The first two segments commit in the first attempt.
      const segments: string[] = [];
      store.beforePut = async (key) => {
        const segment = /\/s(\d+)-/.exec(key)?.[1];
        if (!segment || segments.includes(segment)) return;
        segments.push(segment);
        if (segments.length >= 3 && segments.length <= 7) {
          await db.pool.query("UPDATE ONLY events SET kind = kind");
        }
      };
      const job = await offloadNow(db.pool, "events");
      expect(job).toMatchObject({ state: "succeeded", attempts: 1, retries: 5 });
      expect(job.last_error).toBeNull();
      expect(await tableDigest(db.pool, "events")).toBe(digest);
      const { rows } = await db.pool.query(
        `SELECT count(*)::int AS segments, sum(rows)::bigint::text AS rows
           FROM offload.segments WHERE job_id = $1 AND state = 'committed'`,
        [job.id],
      );
      expect(rows[0].segments).toBeGreaterThan(3);
      expect(job).toMatchObject({
        segments_done: rows[0].segments,
        segments_total: rows[0].segments,
        rows_done: rows[0].rows,
      });
    });

    it("conflicts beyond the retry bound count as attempts; attempts never exceed the limit", async () => {
      await bridge?.stop();
      const config = await testStoreConfig(kind);
      store = new HookedStore(openStore(config.config));
      bridge = await startTestBridge(db.url, config.config, {
        objectStore: store,
        overrides: { maxAttempts: 3, maxConflictRetries: 2, segmentTargetBytes: 256 * 1024 },
      });
      store.beforePut = () => db.pool.query("UPDATE ONLY events SET kind = kind").then(() => {});
      const job = await offloadNow(db.pool, "events");
      expect(job).toMatchObject({ state: "failed", attempts: 3, retries: 2 });
      expect(job.last_error).toMatch(/could not serialize/);
      expect(await tableDigest(db.pool, "events")).toBe(digest);
      expect(await segmentTables(db.pool, "events")).toEqual([]);
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
