import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool } from "../../bridge/db.ts";
import { JobQueue } from "../../bridge/job-queue.ts";
import { silentLogger } from "../../bridge/log.ts";
import { fixture } from "../support/fixtures.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";

const LIMITS = { maxAttempts: 3, maxConflictRetries: 1 };
const NOTHING_KEPT = { segments: 0, rows: 0, bytes: 0 };

describe("job progress", () => {
  let db: TestDatabase;
  let pool: ReturnType<typeof createPool>;

  beforeAll(async () => {
    db = await createTestDatabase("job-progress");
    pool = createPool(db.url, silentLogger);
    await db.pool.query(fixture("events-table.sql"));
  });

  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  it("lands in the order it was written, even when an earlier write was not awaited", async () => {
    const queue = new JobQueue(pool, "progress-test", 60_000, LIMITS);
    await db.pool.query("SELECT offload.run('events')");
    const job = (await queue.claim())!;
    // The race as a chunk upload meets a segment's commit: the upload's write, not awaited, needs a
    // new connection (slow); the later write finds an idle one at once and would land first.
    const busy = await pool.connect();
    const early = queue.progress(job.id, {
      segmentsTotal: 9,
      segmentsDone: 8,
      rowsDone: 1,
      bytesDone: 1,
      kept: NOTHING_KEPT,
    });
    busy.release();
    await queue.progress(job.id, {
      segmentsTotal: 9,
      segmentsDone: 9,
      rowsDone: 2,
      bytesDone: 2,
      kept: NOTHING_KEPT,
    });
    await early;
    const { rows } = await db.pool.query(
      "SELECT segments_done, rows_done, bytes_done FROM offload.jobs WHERE id = $1",
      [job.id],
    );
    expect(rows[0]).toEqual({ segments_done: 9, rows_done: "2", bytes_done: "2" });
  });

  it("counts what earlier attempts committed, once, and drops what a failed attempt did not commit", async () => {
    await db.pool.query("DELETE FROM offload.jobs");
    const queue = new JobQueue(pool, "progress-test", 60_000, LIMITS);
    await db.pool.query("SELECT offload.run('events')");
    const first = (await queue.claim())!;
    // Two of four segments committed (200 rows), 50 rows of the third uploaded, then a failure.
    await queue.progress(first.id, {
      segmentsTotal: 4,
      segmentsDone: 2,
      rowsDone: 250,
      bytesDone: 2500,
      kept: { segments: 2, rows: 200, bytes: 2000 },
    });
    await queue.retryLater(first.id, "injected", 0);
    const second = (await queue.claim())!;
    expect(second).toMatchObject({ id: first.id, attempts: 2, retries: 0 });
    expect(await progressOf(first.id)).toEqual({
      segments_total: 4,
      segments_done: 2,
      rows_done: "200",
      bytes_done: "2000",
    });
    // The second attempt finds the two other segments due, and commits them.
    await queue.progress(first.id, {
      segmentsTotal: 2,
      segmentsDone: 2,
      rowsDone: 200,
      bytesDone: 2000,
      kept: { segments: 2, rows: 200, bytes: 2000 },
    });
    await queue.complete(first.id);
    expect(await progressOf(first.id)).toEqual({
      segments_total: 4,
      segments_done: 4,
      rows_done: "400",
      bytes_done: "4000",
    });
  });

  it("a lost bridge's run is retried without an attempt, within the bound; attempts never exceed the limit", async () => {
    await db.pool.query("DELETE FROM offload.jobs");
    await db.pool.query("SELECT offload.run('events')");
    // Each queue takes over any running job at once (a lease of 0 ms): each claim below is the
    // next bridge finding the previous one gone.
    const takeOver = (n: number) => new JobQueue(pool, `bridge-${n}`, 0, LIMITS).claim();
    expect(await takeOver(1)).toMatchObject({ attempts: 1, retries: 0 });
    expect(await takeOver(2)).toMatchObject({ attempts: 1, retries: 1 });
    // Past the bound of one free retry, a lost run counts.
    expect(await takeOver(3)).toMatchObject({ attempts: 2, retries: 1 });
    expect(await takeOver(4)).toMatchObject({ attempts: 3, retries: 1 });
    expect(await takeOver(5)).toBeUndefined();
    const { rows } = await db.pool.query(
      "SELECT state, attempts, retries, locked_by, last_error FROM offload.jobs",
    );
    expect(rows).toEqual([
      {
        state: "failed",
        attempts: 3,
        retries: 1,
        locked_by: null,
        last_error:
          "gave up after 3 attempts; the last: taken over from bridge-4, which stopped heartbeating",
      },
    ]);
  });

  it("a conflict gives the attempt back", async () => {
    await db.pool.query("DELETE FROM offload.jobs");
    await db.pool.query("SELECT offload.run('events')");
    const queue = new JobQueue(pool, "progress-test", 60_000, LIMITS);
    const job = (await queue.claim())!;
    await queue.retryFree(job.id, "could not serialize access", 0);
    expect(await queue.claim()).toMatchObject({ id: job.id, attempts: 1, retries: 1 });
  });

  async function progressOf(jobId: number) {
    const { rows } = await db.pool.query(
      "SELECT segments_total, segments_done, rows_done, bytes_done FROM offload.jobs WHERE id = $1",
      [jobId],
    );
    return rows[0];
  }
});
