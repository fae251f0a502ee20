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
      // A copy the worker owns: `raw` is often a view into a larger buffer, which a transfer
      // would take away whole and structured cloning would copy whole.
      const owned = new Uint8Array(raw);
      const task: EncodeTask = { raw: owned, options };
      const stored: Uint8Array = await pool.run(task, { transferList: [owned.buffer] });
      return Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
    },
    close: () => pool.close(),
  };
}
