import type pg from "pg";
import type { DueSegment } from "./policy-plan.ts";
import {
  copyToStore,
  segmentKeyBase,
  totals,
  type ChunkWriterContext,
  type WrittenChunk,
} from "./copy-to-store.ts";
import {
  abortSegment,
  beginSegment,
  commitSegment,
  segmentCopyStatement,
  segmentLockStatement,
  setCommitLockTimeout,
} from "./catalog-calls.ts";
import { sqlState, toError } from "./errors.ts";
import { failpoint } from "./failpoints.ts";
import type { Logger } from "./log.ts";
import type { ReaderPrograms } from "./read-endpoints.ts";
import type { RemoteReaderSetup } from "./remote-reader/remote-reader-setup.ts";

export interface SegmentWriterContext extends ChunkWriterContext {
  db: pg.Pool;
  /** The reader programs of the segment tables it commits: naming every bridge's endpoint. */
  readers: ReaderPrograms;
  /** Sets up tables read through postgres_fdw before their segments are written. */
  remoteReaders: RemoteReaderSetup;
  /** How long the commit may wait for queries on the table to finish before the job retries. */
  commitLockTimeoutMs: number;
  log: Logger;
}

export interface SegmentOutcome {
  segmentId: number;
  rows: number;
  rawBytes: number;
  storedBytes: number;
  /** The segment table created, or undefined when the range held no rows any more. */
  segmentTable?: string;
}

/**
 * Moves the rows of one key range of a table into a new segment, by DESIGN.md decision 4:
 * a pending segment record committed on its own, then a REPEATABLE READ transaction that copies
 * the rows out, uploads them chunk by chunk under fresh keys, and, still under the copy's
 * snapshot, records the chunks, creates the segment table and deletes exactly the copied rows.
 * A failure or crash before that commit leaves every row in the heap and only orphan objects.
 */
export async function writeSegment(
  ctx: SegmentWriterContext,
  job: { id: number; tableOid: number },
  due: DueSegment,
  onChunk: (chunk: WrittenChunk) => void,
): Promise<SegmentOutcome> {
  const reading = await ctx.remoteReaders.prepare(job.tableOid);
  const segmentId = await beginSegment(ctx.db, {
    jobId: job.id,
    tableOid: job.tableOid,
    lo: due.lo,
    hi: due.hi,
    store: ctx.store.description,
    partition: due.partition ?? null,
  });
  const log = ctx.log.child({ segment: segmentId, partition: due.partition });
  failpoint("after-begin-segment");
  const lock = await segmentLockStatement(ctx.db, segmentId);

  const client = await ctx.db.connect();
  let broken: Error | undefined;
  try {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
    // A partition is dropped at the commit, so writes to it must wait until then. The LOCK comes
    // before any query, so the snapshot the copy reads is taken after it.
    if (lock) await client.query(lock);
    const outcome = await copyUploadCommit(
      { ...ctx, ...reading },
      client,
      segmentId,
      Boolean(due.partition),
      onChunk,
    );
    log.info(outcome.segmentTable ? "segment committed" : "segment range was empty", {
      rows: outcome.rows,
      rawBytes: outcome.rawBytes,
      storedBytes: outcome.storedBytes,
    });
    return outcome;
  } catch (thrown) {
    const error = toError(thrown);
    if (sqlState(error)) {
      await client.query("ROLLBACK").catch((rollbackError) => {
        broken = toError(rollbackError);
      });
    } else {
      // A stream or store failure can leave the COPY half-read: drop the connection instead,
      // and PostgreSQL rolls the transaction back when it goes away.
      broken = error;
    }
    // Idempotent (pending -> aborted), so resent when the failure also killed the connection.
    await abortSegment(ctx.db, segmentId).catch((error) => {
      log.warn("could not mark the failed segment aborted; it stays pending", { error });
    });
    throw error;
  } finally {
    client.release(broken);
  }
}

async function copyUploadCommit(
  ctx: SegmentWriterContext,
  client: pg.PoolClient,
  segmentId: number,
  isPartition: boolean,
  onChunk: (chunk: WrittenChunk) => void,
): Promise<SegmentOutcome> {
  const copySql = await segmentCopyStatement(client, segmentId);
  const keyBase = segmentKeyBase(ctx.installationId, segmentId, 1);
  const chunks = await copyToStore(ctx, client, copySql, keyBase, onChunk);
  const outcome: SegmentOutcome = { segmentId, ...totals(chunks) };
  // An empty key range is simply skipped; an empty due partition is still replaced, so that it
  // stops taking (and holding) late rows like its offloaded neighbours.
  if (outcome.rows === 0 && !isPartition) {
    await client.query("ROLLBACK");
    await abortSegment(ctx.db, segmentId);
    return outcome;
  }
  failpoint("before-commit");
  await setCommitLockTimeout(client, ctx.commitLockTimeoutMs);
  const program = await ctx.readers.forCommit(client, segmentId, 1);
  const segmentTable = await commitSegment(client, {
    id: segmentId,
    chunks,
    program,
    rows: outcome.rows,
  });
  await client.query("COMMIT");
  failpoint("after-commit");
  return { ...outcome, segmentTable };
}
