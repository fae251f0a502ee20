import { copyToStore, segmentKeyBase, totals, type WrittenChunk } from "./copy-to-store.ts";
import { OffloadError, sqlState, toError } from "./errors.ts";
import { failpoint } from "./failpoints.ts";
import type { ClaimedJob, JobProgress, RewriteParams } from "./job-queue.ts";
import type { JobContext } from "./job-context.ts";
import { rewriteStep, setCommitLockTimeout, swapRewrittenSegment } from "./catalog-calls.ts";
import { query } from "./sql-files.ts";

interface Candidate {
  id: string;
  epoch: number;
  rows: string;
  segment_table: string;
}

/** What the first transaction of a segment's rewrite produced, for the swap. */
interface RewrittenSegment {
  matched: number;
  newEpoch: number;
  chunks: WrittenChunk[];
  rows: number;
  fingerprint: string;
}

/**
 * Deletes or updates cold rows: each segment holding matching rows is read through its reader,
 * changed inside PostgreSQL (so the condition has PostgreSQL's exact semantics), written as a
 * new epoch and swapped in atomically. Segments without matching rows are not touched, and
 * segments this job already swapped (in an earlier attempt, or on another bridge) are skipped:
 * each change is applied exactly once.
 */
export async function runRewriteJob(ctx: JobContext, job: ClaimedJob): Promise<JobProgress> {
  const params = job.params as RewriteParams;
  const { rows: segments } = await ctx.db.query<Candidate>(query("rewrite-candidates"), [
    job.tableOid,
    job.id,
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
    failpoint("before-rewrite-segment");
    const changed = await rewriteSegment(ctx, job, segment, params);
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
  ctx: JobContext,
  job: ClaimedJob,
  segment: Candidate,
  params: RewriteParams,
): Promise<number> {
  const id = Number(segment.id);
  const rewritten = await writeNewEpoch(ctx, job, segment, params);
  if (!rewritten) return 0;
  failpoint("before-swap");
  await swapIn(ctx, job, id, rewritten);
  failpoint("after-swap");
  ctx.log
    .child({ segment: id })
    .info("segment rewritten", { epoch: rewritten.newEpoch, matching: rewritten.matched });
  return rewritten.matched;
}

/**
 * The first transaction: counts the matching rows and writes the segment's new rows to the store.
 * The user's SQL runs in it (inside functions owned by the role that asked, see
 * sql/functions/rewrites.sql), so it is always rolled back, whatever that SQL did, and its
 * connection is closed rather than returned to the pool.
 */
async function writeNewEpoch(
  ctx: JobContext,
  job: ClaimedJob,
  segment: Candidate,
  params: RewriteParams,
): Promise<RewrittenSegment | undefined> {
  const id = Number(segment.id);
  const client = await ctx.db.connect();
  let usable = true;
  try {
    await client.query("BEGIN");
    const begin = await client.query(query("rewrite-begin"), [id]);
    const { lock_sql: lockSql, fingerprint } = begin.rows[0];
    await client.query(lockSql);
    const step = { segment: id, params, requestedBy: job.requestedBy };
    const countSql = await rewriteStep(client, { ...step, kind: "count" });
    const matched = Number((await client.query(countSql)).rows[0].count);
    if (matched === 0) return undefined;
    const copySql = await rewriteStep(client, { ...step, kind: "rows" });
    const newEpoch = segment.epoch + 1;
    const keyBase = segmentKeyBase(ctx.installationId, id, newEpoch);
    const reading = await ctx.remoteReaders.prepare(job.tableOid);
    const chunks = await copyToStore({ ...ctx, ...reading }, client, copySql, keyBase);
    const rows = totals(chunks).rows;
    const expected = params.delete ? Number(segment.rows) - matched : Number(segment.rows);
    if (rows !== expected) {
      throw new OffloadError(
        `pg-offload: rewrite of segment ${id} wrote ${rows} rows, expected ${expected}`,
        { segment: id },
      );
    }
    return { matched, newEpoch, chunks, rows, fingerprint };
  } catch (error) {
    usable = sqlState(error) !== undefined;
    throw error;
  } finally {
    // Closing the connection rolls the transaction back. The ROLLBACK first, so that the swap
    // finds the segment table's lock released, only on a connection that can still take it: after
    // a COPY cut short (an upload failed, the job was taken over) node-postgres sends nothing more
    // on it, and awaiting a ROLLBACK would hold the transaction and its lock open for good.
    if (usable) await client.query("ROLLBACK").catch(() => undefined);
    client.release(true);
  }
}

/** The second transaction, with no user code in it: records the new epoch, once per job. */
async function swapIn(
  ctx: JobContext,
  job: ClaimedJob,
  id: number,
  rewritten: RewrittenSegment,
): Promise<void> {
  const client = await ctx.db.connect();
  let broken: Error | undefined;
  try {
    await client.query("BEGIN");
    await setCommitLockTimeout(client, ctx.commitLockTimeoutMs);
    const program = await ctx.readers.forCommit(client, id, rewritten.newEpoch);
    await swapRewrittenSegment(client, { jobId: job.id, segment: id, program, ...rewritten });
    await client.query("COMMIT");
  } catch (thrown) {
    const error = toError(thrown);
    if (sqlState(error)) await client.query("ROLLBACK").catch((e) => (broken = toError(e)));
    else broken = error;
    throw error;
  } finally {
    client.release(broken);
  }
}
