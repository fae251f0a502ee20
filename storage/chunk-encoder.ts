/**
 * Encodes chunks (storage/chunk-format.ts) on a pool of worker threads. Compressing an 8 MiB chunk
 * at zstd level 3 takes tens of milliseconds; on the event loop that would stall every scan the
 * bridge is serving and leave the COPY unread, so offloads hand the work to threads instead.
 * With no threads, chunks are encoded inline (for one-off tools and measurements).
 */
import { fileURLToPath } from "node:url";
import { Piscina } from "piscina";
import { encodeChunk, type ChunkSealing } from "./chunk-format.ts";
import type { ChunkKey } from "./chunk-keys.ts";

export interface EncodeOptions {
  rows: number;
  compressionLevel: number;
  encryptWith?: ChunkKey & ChunkSealing;
}

export interface EncodeTask {
  raw: Uint8Array;
  options: EncodeOptions;
}

export interface ChunkEncoder {
  encode(raw: Buffer, options: EncodeOptions): Promise<Buffer>;
  close(): Promise<void>;
}

export const INLINE_ENCODER: ChunkEncoder = {
  encode: async (raw, options) => encodeChunk(raw, options),
  close: async () => {},
};

const WORKER = fileURLToPath(new URL("./chunk-encoder-worker.ts", import.meta.url));

export function chunkEncoder(threads: number): ChunkEncoder {
  if (threads <= 0) return INLINE_ENCODER;
  const pool = new Piscina({
    filename: WORKER,
    // Started with the bridge: a thread's start (loading tsx and zstd) would otherwise delay the
    // first chunk of every burst of offloads.
    minThreads: threads,
    maxThreads: threads,
    // The worker is TypeScript: it loads through tsx, as the bridge itself does. Nothing else
    // of the bridge's own flags: Node refuses some of them (--trace-gc, ...) in a worker.
    execArgv: ["--import", "tsx"],
  });
  return {
    async encode(raw, options) {
      // Always a copy the worker owns: the caller keeps using `raw` (a whole buffer moved away
      // would be left detached), and a view must not take its whole ArrayBuffer along.
      const owned = new Uint8Array(raw);
      const task: EncodeTask = { raw: owned, options };
      const stored: Uint8Array = await pool.run(task, { transferList: [owned.buffer] });
      return Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
    },
    close: () => pool.close(),
  };
}

/**
 * Bytes that can be transferred to or from a worker thread: a Uint8Array that is the whole of its
 * own ArrayBuffer, `bytes` itself when it already is, else a copy. A transfer moves a whole
 * ArrayBuffer, so a view into a larger one must never be transferred: a chunk the COPY chunker cut
 * from a bigger buffer would take its neighbours along, and a small Buffer (Buffer.from, concat,
 * allocUnsafe under 4 KiB) is a slice of Node's shared pool, which Node 22 and later refuse to
 * transfer (DataCloneError) and Node 20 lets go, detaching every other Buffer carved from it.
 */
export function transferable(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const whole =
    bytes.buffer instanceof ArrayBuffer &&
    bytes.byteOffset === 0 &&
    bytes.byteLength === bytes.buffer.byteLength;
  return whole ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(bytes);
}
