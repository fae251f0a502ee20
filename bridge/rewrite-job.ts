import { copyToStore, segmentKeyBase, totals } from "./copy-to-store.ts";
import { OffloadError, sqlState, toError } from "./errors.ts";
import { failpoint } from "./failpoints.ts";
import type { ClaimedJob, JobProgress, RewriteParams } from "./job-queue.ts";
import type { OffloadJobContext } from "./offload-job.ts";
import { readerProgram } from "./reader-program.ts";
import { query } from "./sql-files.ts";

interface Candidate {
  id: string;
  epoch: number;
  rows: string;
  segment_table: string;
}

/**
 * Deletes or updates cold rows: each segment holding matching rows is read through its reader,
 * changed inside PostgreSQL (so the condition has PostgreSQL's exact semantics), written as a
 * new epoch and swapped in atomically. Segments without matching rows are not touched.
 */
export async function runRewriteJob(ctx: OffloadJobContext, job: ClaimedJob): Promise<JobProgress> {
  const params = job.params as RewriteParams;
  const { rows: segments } = await ctx.db.query<Candidate>(query("rewrite-candidates"), [
    job.tableOid,
  ]);
  const progress: JobProgress = {
    segmentsTotal: segments.length,
    segmentsDone: 0,
    rowsDone: 0,
    bytesDone: 0,
    kept: { segments: 0, rows: 0, bytes: 0 },
  };
  for (const segment of segments) {
    ctx.signal.throwIfAborted();
    const changed = await rewriteSegment(ctx, segment, params, job.requestedBy);
    progress.segmentsDone++;
    progress.rowsDone += changed;
    // A swapped segment is done for good (a retry of this job skips it); one without matching
    // rows is examined again by a retry, so it is not kept.
    if (changed > 0) {
      progress.kept = {
        ...progress.kept,
        segments: progress.kept.segments + 1,
        rows: progress.kept.rows + changed,
      };
    }
    await ctx.queue.progress(job.id, progress);
  }
  return progress;
}

/** Rewrites one segment if it holds matching rows; returns how many rows matched. */
async function rewriteSegment(
  ctx: OffloadJobContext,
  segment: Candidate,
  params: RewriteParams,
  requestedBy: string,
): Promise<number> {
  const id = Number(segment.id);
  const log = ctx.log.child({ segment: id });
  const client = await ctx.db.connect();
  let broken: Error | undefined;
  try {
    await client.query("BEGIN");
    // Held to the swap: no ALTER TABLE between the copy and the layout the swap records. The
    // statements name the columns, so they are built again once the lock is held.
    const statements = () => client.query(query("rewrite-statements"), [id, params]);
    await client.query((await statements()).rows[0].lock_sql);
    const { count_sql: countSql, copy_sql: copySql } = (await statements()).rows[0];
    // The condition and assignments are the user's SQL: they run with the asking role's rights,
    // never the bridge's (a function in them could otherwise act as a superuser).
    await client.query(query("set-local-role"), [requestedBy]);
    const matching = Number((await client.query(countSql)).rows[0].count);
    if (matching === 0) {
      await client.query("ROLLBACK");
      return 0;
    }
    const newEpoch = segment.epoch + 1;
    const expectedRows = params.delete ? Number(segment.rows) - matching : Number(segment.rows);
    const keyBase = segmentKeyBase(ctx.installationId, id, newEpoch);
    const chunks = await copyToStore(ctx, client, copySql, keyBase);
    const written = totals(chunks).rows;
    if (written !== expectedRows) {
      throw new OffloadError(
        `pg-offload: rewrite of segment ${id} wrote ${written} rows, expected ${expectedRows}`,
        { segment: id },
      );
    }
    await client.query("RESET ROLE");
    failpoint("before-swap");
    await client.query(query("set-commit-lock-timeout"), [`${ctx.commitLockTimeoutMs}ms`]);
    await client.query(query("swap-segment-epoch"), [
      id,
      newEpoch,
      JSON.stringify(chunks),
      readerProgram(ctx.endpoint, id, newEpoch),
      written,
    ]);
    await client.query("COMMIT");
    log.info("segment rewritten", { epoch: newEpoch, matching, rows: written });
    return matching;
  } catch (thrown) {
    const error = toError(thrown);
    if (sqlState(error)) await client.query("ROLLBACK").catch((e) => (broken = toError(e)));
    else broken = error;
    throw error;
  } finally {
    client.release(broken);
  }
}
