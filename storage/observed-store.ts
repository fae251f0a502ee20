import type { ObjectInfo, ObjectKey, ObjectStore, StoreCallOptions } from "./object-store.ts";
import { StoreError } from "./store-errors.ts";

/** Told of every call a store gets, and of each that fails (with the StoreError's kind). */
export interface StoreObserver {
  call(op: string): void;
  failed(op: string, kind: string): void;
}

/** Reports the calls of the store it wraps (for metrics), changing nothing about them. */
export class ObservedStore implements ObjectStore {
  constructor(
    private readonly inner: ObjectStore,
    private readonly observer: StoreObserver,
  ) {}

  get description(): string {
    return this.inner.description;
  }

  put(key: ObjectKey, body: Uint8Array, options?: StoreCallOptions): Promise<void> {
    return this.observe("put", () => this.inner.put(key, body, options));
  }

  get(key: ObjectKey, options?: StoreCallOptions): Promise<Buffer> {
    return this.observe("get", () => this.inner.get(key, options));
  }

  delete(key: ObjectKey, options?: StoreCallOptions): Promise<void> {
    return this.observe("delete", () => this.inner.delete(key, options));
  }

  async *list(prefix: string, options?: StoreCallOptions): AsyncIterable<ObjectInfo> {
    this.observer.call("list");
    try {
      yield* this.inner.list(prefix, options);
    } catch (error) {
      this.observer.failed("list", kindOf(error));
      throw error;
    }
  }

  private async observe<T>(op: string, call: () => Promise<T>): Promise<T> {
    this.observer.call(op);
    try {
      return await call();
    } catch (error) {
      this.observer.failed(op, kindOf(error));
      throw error;
    }
  }
}

function kindOf(error: unknown): string {
  return error instanceof StoreError ? error.kind : "other";
}
