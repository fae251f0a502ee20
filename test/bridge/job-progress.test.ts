import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool } from "../../bridge/db.ts";
import { JobQueue } from "../../bridge/job-queue.ts";
import { silentLogger } from "../../bridge/log.ts";
import { fixture } from "../support/fixtures.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";

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
    const queue = new JobQueue(pool, "progress-test", 60_000);
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
    });
    busy.release();
    await queue.progress(job.id, { segmentsTotal: 9, segmentsDone: 9, rowsDone: 2, bytesDone: 2 });
    await early;
    const { rows } = await db.pool.query(
      "SELECT segments_done, rows_done, bytes_done FROM offload.jobs WHERE id = $1",
      [job.id],
    );
    expect(rows[0]).toEqual({ segments_done: 9, rows_done: "2", bytes_done: "2" });
  });
});
