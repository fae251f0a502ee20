/**
 * Caps the pace of a store's writes and deletes, in bytes per second and requests per second,
 * so that background work (offloads, rewrites, garbage collection) leaves the network, the store
 * and, through the offload pipeline's backpressure, the database's disks to the production
 * workload. Reads are not limited: a query waits for them.
 *
 * Each limit is a token bucket holding one second's worth: a pause lets a burst of up to one
 * second's allowance through, after which calls are spaced to the rate.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { ObjectInfo, ObjectKey, ObjectStore, StoreCallOptions } from "./object-store.ts";
import { cancelledError } from "./store-errors.ts";

export interface RateLimits {
  /** Bytes written per second; 0: no limit. */
  bytesPerSecond: number;
  /** Requests (writes and deletes) per second; 0: no limit. */
  requestsPerSecond: number;
}

export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

const REAL_CLOCK: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) => sleep(ms, undefined, { signal }),
};

/** Spends `amount` of a per-second allowance, waiting when it is used up. */
export class TokenBucket {
  private tokens: number;
  private updated: number;

  constructor(
    private readonly perSecond: number,
    private readonly clock: Clock = REAL_CLOCK,
  ) {
    this.tokens = perSecond;
    this.updated = clock.now();
  }

  /**
   * Takes the tokens at once, going into debt if need be, and waits until the debt is repaid:
   * callers queue in the order they asked, and an amount larger than the bucket still passes.
   */
  async take(amount: number, signal?: AbortSignal): Promise<void> {
    const now = this.clock.now();
    this.tokens = Math.min(
      this.perSecond,
      this.tokens + ((now - this.updated) / 1000) * this.perSecond,
    );
    this.updated = now;
    this.tokens -= amount;
    if (this.tokens < 0) await this.clock.sleep((-this.tokens / this.perSecond) * 1000, signal);
  }
}

export class RateLimitedStore implements ObjectStore {
  private readonly bytes?: TokenBucket;
  private readonly requests?: TokenBucket;

  constructor(
    private readonly inner: ObjectStore,
    limits: RateLimits,
    clock: Clock = REAL_CLOCK,
  ) {
    if (limits.bytesPerSecond > 0) this.bytes = new TokenBucket(limits.bytesPerSecond, clock);
    if (limits.requestsPerSecond > 0) {
      this.requests = new TokenBucket(limits.requestsPerSecond, clock);
    }
  }

  get description(): string {
    return this.inner.description;
  }

  async put(key: ObjectKey, body: Uint8Array, options?: StoreCallOptions): Promise<void> {
    await this.pace(key, body.byteLength, options?.signal);
    await this.inner.put(key, body, options);
  }

  get(key: ObjectKey, options?: StoreCallOptions): Promise<Buffer> {
    return this.inner.get(key, options);
  }

  async delete(key: ObjectKey, options?: StoreCallOptions): Promise<void> {
    await this.pace(key, 0, options?.signal);
    await this.inner.delete(key, options);
  }

  /** Waits for the call's turn; a call cancelled while it waits fails as the store's would. */
  private async pace(key: string, bytes: number, signal?: AbortSignal): Promise<void> {
    try {
      await this.requests?.take(1, signal);
      if (bytes > 0) await this.bytes?.take(bytes, signal);
    } catch (error) {
      if (signal?.aborted) throw cancelledError(signal, { store: this.description, key });
      throw error;
    }
  }

  list(prefix: string, options?: StoreCallOptions): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix, options);
  }
}

/** The store as given when no limit is set. */
export function rateLimited(store: ObjectStore, limits: RateLimits): ObjectStore {
  const limited = limits.bytesPerSecond > 0 || limits.requestsPerSecond > 0;
  return limited ? new RateLimitedStore(store, limits) : store;
}
