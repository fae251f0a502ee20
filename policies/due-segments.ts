import type pg from "pg";
import { sqlFile } from "../bridge/sql-files.ts";
import type { SegmentRange } from "../bridge/segment-writer.ts";

const QUERIES = new URL("./queries/", import.meta.url);

/**
 * The key ranges of a table that its policy says are due now, cut so that each holds about
 * `targetBytes` of heap. Computed by offload.due_segments() in SQL with one sort of the due keys.
 */
export async function dueSegments(
  db: pg.Pool,
  tableOid: number,
  targetBytes: number,
): Promise<SegmentRange[]> {
  const { rows } = await db.query(sqlFile(QUERIES, "due-segments"), [tableOid, targetBytes]);
  return rows.map((r) => ({ lo: r.range_lo, hi: r.range_hi }));
}

/** Queues a job for every attached table that has not had one for `intervalMs`. */
export async function enqueueScheduledJobs(db: pg.Pool, intervalMs: number): Promise<number> {
  const { rowCount } = await db.query(sqlFile(QUERIES, "enqueue-scheduled-jobs"), [intervalMs]);
  return rowCount ?? 0;
}
