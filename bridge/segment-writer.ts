import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { randomBytes } from "node:crypto";
import type pg from "pg";
import { to as copyTo } from "pg-copy-streams";
import { encodeChunk, readChunkHeader } from "../storage/chunk-format.ts";
import { objectKey } from "../storage/object-key.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import type { DueSegment } from "../policies/due-segments.ts";
import { CopyChunker, type RawChunk } from "./copy-chunker.ts";
import { sqlState, toError } from "./errors.ts";
import { failpoint } from "./failpoints.ts";
import type { Logger } from "./log.ts";
import { readerProgram, type ReadEndpointAddress } from "./reader-program.ts";
import { query } from "./sql-files.ts";

export interface SegmentWriterContext {
  db: pg.Pool;
  store: ObjectStore;
  installationId: string;
  endpoint: ReadEndpointAddress;
  chunkBytes: number;
  compressionLevel: number;
  /** How long the commit may wait for queries on the table to finish before the job retries. */
  commitLockTimeoutMs: number;
  log: Logger;
  signal: AbortSignal;
}

export interface WrittenChunk {
  seq: number;
  object_key: string;
  rows: number;
  raw_bytes: number;
  stored_bytes: number;
  crc32c: number;
  codec: string;
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
  const { rows } = await ctx.db.query(query("begin-segment"), [
    job.id,
    job.tableOid,
    due.lo,
    due.hi,
    ctx.store.description,
    due.partition ?? null,
  ]);
  const segmentId = Number(rows[0].id);
  const log = ctx.log.child({ segment: segmentId, partition: due.partition });
  failpoint("after-begin-segment");
  const lock = await ctx.db.query(query("segment-lock-statement"), [segmentId]);

  const client = await ctx.db.connect();
  let broken: Error | undefined;
  try {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
    // A partition is dropped at the commit, so writes to it must wait until then. The LOCK comes
    // before any query, so the snapshot the copy reads is taken after it.
    if (lock.rows[0]?.sql) await client.query(lock.rows[0].sql);
    const outcome = await copyUploadCommit(ctx, client, segmentId, Boolean(due.partition), onChunk);
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
    await ctx.db.query(query("abort-segment"), [segmentId]).catch((error) => {
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
  const { rows } = await client.query(query("segment-copy-statement"), [segmentId]);
  const chunks: WrittenChunk[] = [];
  const keyBase = `${ctx.installationId}/s${segmentId}-${randomBytes(4).toString("hex")}/e1`;
  const uploader = new Writable({
    objectMode: true,
    highWaterMark: 1,
    write: (raw: RawChunk, _encoding, done) => {
      uploadChunk(ctx, keyBase, raw).then((chunk) => {
        chunks.push(chunk);
        onChunk(chunk);
        failpoint("after-chunk-upload");
        done();
      }, done);
    },
  });
  await pipeline(client.query(copyTo(rows[0].sql)), new CopyChunker(ctx.chunkBytes), uploader, {
    signal: ctx.signal,
  });

  const copiedRows = chunks.reduce((sum, c) => sum + c.rows, 0);
  const outcome: SegmentOutcome = {
    segmentId,
    rows: copiedRows,
    rawBytes: chunks.reduce((sum, c) => sum + c.raw_bytes, 0),
    storedBytes: chunks.reduce((sum, c) => sum + c.stored_bytes, 0),
  };
  // An empty key range is simply skipped; an empty due partition is still replaced, so that it
  // stops taking (and holding) late rows like its offloaded neighbours.
  if (copiedRows === 0 && !isPartition) {
    await client.query("ROLLBACK");
    await ctx.db.query(query("abort-segment"), [segmentId]);
    return outcome;
  }
  failpoint("before-commit");
  await client.query(query("set-commit-lock-timeout"), [`${ctx.commitLockTimeoutMs}ms`]);
  const committed = await client.query(query("commit-segment"), [
    segmentId,
    JSON.stringify(chunks),
    readerProgram(ctx.endpoint, segmentId, 1),
    copiedRows,
  ]);
  await client.query("COMMIT");
  failpoint("after-commit");
  return { ...outcome, segmentTable: committed.rows[0].segment_table };
}

async function uploadChunk(
  ctx: SegmentWriterContext,
  keyBase: string,
  raw: RawChunk,
): Promise<WrittenChunk> {
  const stored = encodeChunk(raw.data, { rows: raw.rows, compressionLevel: ctx.compressionLevel });
  const header = readChunkHeader(stored);
  const key = objectKey(`${keyBase}/${String(raw.seq).padStart(6, "0")}.chunk`);
  await ctx.store.put(key, stored, { signal: ctx.signal });
  return {
    seq: raw.seq,
    object_key: key,
    rows: raw.rows,
    raw_bytes: raw.data.length,
    stored_bytes: stored.length,
    crc32c: header.payloadCrc32c,
    codec: header.codec === 1 ? "zstd" : "none",
  };
}
