import { setTimeout as sleep } from "node:timers/promises";
import { ChunkFormatError, decodeChunk, readChunkHeader } from "../storage/chunk-format.ts";
import type { ChunkCache } from "../storage/chunk-cache.ts";
import type { ChunkKeyring } from "../storage/chunk-keys.ts";
import { objectKey } from "../storage/object-key.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import { StoreError } from "../storage/store-errors.ts";
import type { Logger } from "./log.ts";

/** A chunk as the virtual index (offload.chunks) records it; numbers as PostgreSQL sends bigints. */
export interface IndexedChunk {
  object_key: string | null;
  rows: string | number | null;
  raw_bytes: string | number | null;
  stored_bytes: string | number | null;
  /** offload.verify() is reading the segment: the cache is neither read nor filled. */
  from_store: boolean;
}

/** A failure to serve a segment, with what a user needs to find it: table, segment, object key. */
export class SegmentReadError extends Error {
  constructor(
    readonly problem: string,
    readonly table: string,
    readonly segment: number,
    readonly key?: string,
    options?: ErrorOptions,
  ) {
    // Object first: PostgreSQL shows only the first 100 bytes of the line carrying this message.
    super(
      `pg-offload: ${problem}, ` +
        (key ? `object ${key}, ` : "") +
        `table ${table}, segment ${segment}`,
      options,
    );
    this.name = "SegmentReadError";
  }
}

/**
 * Fetches chunks for both readers (the file reader's HTTP endpoint and the SQL endpoint): from the
 * cache when it holds them, else from the store; each one verified against the virtual index.
 */
export class ChunkFetcher {
  constructor(
    private readonly store: ObjectStore,
    private readonly cache: ChunkCache,
    private readonly keys: ChunkKeyring,
    private readonly log: Logger,
  ) {}

  /**
   * A chunk whose bytes arrive but fail verification (a length the index does not know, a bad
   * CRC) is fetched again, up to CHUNK_FETCHES times: damage on the way (a proxy, a flaky link)
   * goes away with a new fetch, damage at rest does not and then fails the query. Store errors are
   * not retried here: the store retries its own calls (storage/retrying-store.ts), and doing it
   * twice would multiply the attempts.
   */
  async fetch(
    table: string,
    segment: number,
    chunk: IndexedChunk,
    signal: AbortSignal,
  ): Promise<Buffer> {
    for (let fetch = 1; ; fetch++) {
      try {
        return await this.fetchVerifiedChunk(table, segment, chunk, signal);
      } catch (error) {
        if (!(error instanceof DamagedChunkError) || fetch >= CHUNK_FETCHES) throw error;
        this.log.warn("chunk failed verification; fetching it again", { segment, fetch, error });
        await sleep(REFETCH_DELAY_MS * (1 + Math.random()), undefined, { signal });
      }
    }
  }

  private async fetchVerifiedChunk(
    table: string,
    segment: number,
    chunk: IndexedChunk,
    signal: AbortSignal,
  ): Promise<Buffer> {
    const key = chunk.object_key as string;
    const cached = chunk.from_store ? undefined : await this.cache.get(key);
    if (cached) {
      try {
        return this.verifyChunk(cached, table, segment, chunk);
      } catch (error) {
        if (!(error instanceof DamagedChunkError)) throw error;
        // Damaged on the bridge's disk: forget the copy and read the store's.
        this.log.warn("cached chunk failed verification; reading the store", { segment, error });
        await this.cache.remove(key);
      }
    }
    let stored: Buffer;
    try {
      stored = await this.store.get(objectKey(key), { signal });
    } catch (error) {
      // Every ObjectStore rejects with StoreError; anything else is a fault of ours, kind "other".
      const kind = error instanceof StoreError ? error.kind : "other";
      const problem =
        kind === "not_found" ? "object missing from the store" : `store read failed (${kind})`;
      throw new SegmentReadError(problem, table, segment, key, { cause: error });
    }
    const raw = this.verifyChunk(stored, table, segment, chunk);
    if (!chunk.from_store) await this.cache.put(key, stored);
    return raw;
  }

  /** The chunk's COPY text, once its bytes prove to be what the index recorded. */
  private verifyChunk(stored: Buffer, table: string, segment: number, chunk: IndexedChunk): Buffer {
    const key = chunk.object_key as string;
    if (stored.length !== Number(chunk.stored_bytes)) {
      throw new DamagedChunkError(
        `object is ${stored.length} bytes, the index says ${chunk.stored_bytes}`,
        table,
        segment,
        key,
      );
    }
    let decoded: { raw: Buffer; rows: number };
    try {
      decoded = decodeChunk(stored, undefined, { objectKey: key, keys: this.keys });
    } catch (error) {
      const reason = error instanceof ChunkFormatError ? error.reason : "unreadable chunk";
      // Fetching again cannot bring a key: say which one the bridge must be given.
      if (reason === "unknown key") {
        const keyId = readChunkHeader(stored).keyId?.toString(16).padStart(8, "0");
        const problem = `chunk needs encryption key ${keyId}, which the bridge lacks`;
        throw new SegmentReadError(problem, table, segment, key, { cause: error });
      }
      throw new DamagedChunkError(reason, table, segment, key, { cause: error });
    }
    if (decoded.rows !== Number(chunk.rows) || decoded.raw.length !== Number(chunk.raw_bytes)) {
      throw new DamagedChunkError("chunk disagrees with the virtual index", table, segment, key);
    }
    return decoded.raw;
  }
}

/** The object was read, but its bytes are not what was stored. */
class DamagedChunkError extends SegmentReadError {}

// Three fetches of a damaged chunk, a short jittered pause between them.
const CHUNK_FETCHES = 3;
const REFETCH_DELAY_MS = 100;
