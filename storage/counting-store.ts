import type { ObjectInfo, ObjectKey, ObjectStore, StoreCallOptions } from "./object-store.ts";

export interface StoreCounts {
  puts: number;
  gets: number;
  deletes: number;
  lists: number;
  bytesPut: number;
  bytesGot: number;
  /** The keys read, in order: which segments a scan fetched is in them. */
  keysGot: string[];
}

export function emptyCounts(): StoreCounts {
  return { puts: 0, gets: 0, deletes: 0, lists: 0, bytesPut: 0, bytesGot: 0, keysGot: [] };
}

/**
 * Counts the requests and bytes that reach the store it wraps (after retries, when it wraps a
 * RetryingStore's backend; as callers see them, when it wraps the RetryingStore). `take()` returns
 * the counts since the last take, so a measurement reads exactly its own traffic.
 */
export class CountingStore implements ObjectStore {
  private counts = emptyCounts();

  constructor(private readonly inner: ObjectStore) {}

  get description(): string {
    return this.inner.description;
  }

  take(): StoreCounts {
    const taken = this.counts;
    this.counts = emptyCounts();
    return taken;
  }

  async put(key: ObjectKey, body: Uint8Array, options?: StoreCallOptions): Promise<void> {
    this.counts.puts++;
    await this.inner.put(key, body, options);
    this.counts.bytesPut += body.byteLength;
  }

  async get(key: ObjectKey, options?: StoreCallOptions): Promise<Buffer> {
    this.counts.gets++;
    const body = await this.inner.get(key, options);
    this.counts.bytesGot += body.length;
    this.counts.keysGot.push(key);
    return body;
  }

  async delete(key: ObjectKey, options?: StoreCallOptions): Promise<void> {
    this.counts.deletes++;
    await this.inner.delete(key, options);
  }

  async *list(prefix: string, options?: StoreCallOptions): AsyncIterable<ObjectInfo> {
    this.counts.lists++;
    yield* this.inner.list(prefix, options);
  }
}
