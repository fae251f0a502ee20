import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type pg from "pg";
import { to as copyTo } from "pg-copy-streams";
import type { ChunkCache } from "../storage/chunk-cache.ts";
import type { ChunkEncoder } from "../storage/chunk-encoder.ts";
import { readChunkHeader } from "../storage/chunk-format.ts";
import type { ChunkKey } from "../storage/chunk-keys.ts";
import { objectKey } from "../storage/object-key.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import type { ChunkBounds } from "./chunk-bounds.ts";
import { CopyChunker, type RawChunk } from "./copy-chunker.ts";
import { toError } from "./errors.ts";
import { failpoint } from "./failpoints.ts";

export interface ChunkWriterContext {
  store: ObjectStore;
  installationId: string;
  chunkBytes: number;
  compressionLevel: number;
  /** Compresses (and encrypts) chunks off the event loop. */
  encoder: ChunkEncoder;
  /** Chunks uploaded at once per segment; memory is about twice this many chunks. */
  uploadConcurrency: number;
  /** When set, chunks are stored encrypted with this key. */
  encryptionKey?: ChunkKey;
  /** Stored chunks are written through to it, so that the first scan after an offload is local. */
  cache?: ChunkCache;
  /** Records each chunk's bounds (tables read through postgres_fdw). */
  chunkBounds?: (raw: Buffer) => Promise<ChunkBounds>;
  signal: AbortSignal;
}

/** A stored chunk, as offload.chunks records it. */
export interface WrittenChunk {
  seq: number;
  object_key: string;
  rows: number;
  raw_bytes: number;
  stored_bytes: number;
  crc32c: number;
  codec: string;
  /** The encryption key's id, as 8 hex digits; null when stored unencrypted. */
  key_id: string | null;
  /** Exact bounds of the key and zone-map columns over its rows; null when not recorded. */
  bounds: ChunkBounds | null;
}

/**
 * Where a segment epoch's chunks go. The random part makes every attempt's keys new, so a key is
 * never written twice (objects are immutable) and a retried attempt never meets a dead one's.
 */
export function segmentKeyBase(installationId: string, segmentId: number, epoch: number): string {
  return `${installationId}/s${segmentId}-${randomBytes(4).toString("hex")}/e${epoch}`;
}

/**
 * Runs a COPY ... TO STDOUT and stores its output as chunks under `keyBase`, one pipeline with
 * backpressure: up to `uploadConcurrency` chunks are uploaded at once (the next chunk is compressed
 * and sent while earlier ones are still on their way), and the COPY waits beyond that. A failed
 * upload aborts the COPY. Resolves, with the chunks in order, once every one is confirmed stored.
 */
export async function copyToStore(
  ctx: ChunkWriterContext,
  client: pg.ClientBase,
  copySql: string,
  keyBase: string,
  onChunk: (chunk: WrittenChunk) => void = () => {},
): Promise<WrittenChunk[]> {
  const chunks: WrittenChunk[] = [];
  const inFlight = new Set<Promise<void>>();
  // One failed upload fails the segment: the others in flight are cancelled, not retried on.
  const failed = new AbortController();
  const uploadCtx = { ...ctx, signal: AbortSignal.any([ctx.signal, failed.signal]) };
  const upload = (raw: RawChunk) => {
    const uploading: Promise<void> = uploadChunk(uploadCtx, keyBase, raw)
      .then((chunk) => {
        chunks.push(chunk);
        onChunk(chunk);
        failpoint("after-chunk-upload");
      })
      .finally(() => inFlight.delete(uploading));
    inFlight.add(uploading);
    // Fails the pipeline at once, even while the COPY is between chunks.
    uploading.catch((error: unknown) => {
      if (!failed.signal.aborted) uploader.destroy(toError(error));
      failed.abort();
    });
  };
  const uploader = new Writable({
    objectMode: true,
    highWaterMark: 1,
    write: (raw: RawChunk, _encoding, done) => {
      upload(raw);
      if (inFlight.size < Math.max(1, ctx.uploadConcurrency)) return done();
      Promise.race(inFlight).then(() => done(), done);
    },
    final: (done) => {
      Promise.all(inFlight).then(() => done(), done);
    },
  });
  try {
    await pipeline(client.query(copyTo(copySql)), new CopyChunker(ctx.chunkBytes), uploader, {
      signal: ctx.signal,
    });
  } catch (error) {
    // Nothing of this attempt may still run once the caller hears of its failure.
    await Promise.allSettled([...inFlight]);
    throw error;
  }
  return chunks.sort((a, b) => a.seq - b.seq);
}

async function uploadChunk(
  ctx: ChunkWriterContext,
  keyBase: string,
  raw: RawChunk,
): Promise<WrittenChunk> {
  const key = objectKey(`${keyBase}/${String(raw.seq).padStart(6, "0")}.chunk`);
  const [stored, bounds] = await Promise.all([
    ctx.encoder.encode(raw.data, {
      rows: raw.rows,
      compressionLevel: ctx.compressionLevel,
      encryptWith: ctx.encryptionKey && { ...ctx.encryptionKey, objectKey: key },
    }),
    ctx.chunkBounds?.(raw.data) ?? null,
  ]);
  const header = readChunkHeader(stored);
  await ctx.store.put(key, stored, { signal: ctx.signal });
  await ctx.cache?.put(key, stored);
  return {
    seq: raw.seq,
    object_key: key,
    rows: raw.rows,
    raw_bytes: raw.data.length,
    stored_bytes: stored.length,
    crc32c: header.payloadCrc32c,
    codec: header.codec === 1 ? "zstd" : "none",
    key_id: ctx.encryptionKey?.idHex ?? null,
    bounds,
  };
}

export function totals(chunks: WrittenChunk[]): {
  rows: number;
  rawBytes: number;
  storedBytes: number;
} {
  return {
    rows: chunks.reduce((sum, c) => sum + c.rows, 0),
    rawBytes: chunks.reduce((sum, c) => sum + c.raw_bytes, 0),
    storedBytes: chunks.reduce((sum, c) => sum + c.stored_bytes, 0),
  };
}
