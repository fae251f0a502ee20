import type { ObjectInfo, ObjectKey, ObjectStore, StoreCallOptions } from "./object-store.ts";
import { cancelledError, StoreError } from "./store-errors.ts";

export type StoreOp = "put" | "get" | "delete" | "list";

/** The error to throw, or a function making one for the op and key (the prefix, for list). */
export type InjectedError = Error | ((op: StoreOp, key: string) => Error);

interface CountedFault {
  op: StoreOp;
  remaining: number;
  error?: InjectedError;
  /** Run the real call first, then fail: the work is done but the caller never hears of it. */
  afterCall: boolean;
}

interface KeyFault {
  op: StoreOp | "any";
  matches: (key: string) => boolean;
  error?: InjectedError;
}

/**
 * A test store wrapping another: it counts calls per operation and fails, hangs or corrupts calls
 * as a test arms it, so that retry, cancellation and verification paths run against a real store.
 * Faults armed with failNext/hangNext are used up in the order armed; key faults last until
 * clearFaults().
 */
export class FaultyStore implements ObjectStore {
  /** Calls per operation, counted whether or not a fault hit them. */
  readonly calls: Record<StoreOp, number> = { put: 0, get: 0, delete: 0, list: 0 };
  private counted: CountedFault[] = [];
  private keyFaults: KeyFault[] = [];
  private hangs: Array<{ op: StoreOp; remaining: number }> = [];
  private corruptions: Array<(key: string) => boolean> = [];

  constructor(readonly inner: ObjectStore) {}

  get description(): string {
    return this.inner.description;
  }

  /** The next `count` calls of `op` fail (by default with a retryable "unavailable" StoreError). */
  failNext(
    op: StoreOp,
    count = 1,
    error?: InjectedError,
    options: { afterCall?: boolean } = {},
  ): this {
    this.counted.push({ op, remaining: count, error, afterCall: options.afterCall ?? false });
    return this;
  }

  /** Every call of `op` (or of any op) on a key the predicate accepts fails, until cleared. */
  failKeys(
    matches: (key: string) => boolean,
    op: StoreOp | "any" = "any",
    error?: InjectedError,
  ): this {
    this.keyFaults.push({ op, matches, error });
    return this;
  }

  /** get returns the object with its last byte flipped, for keys the predicate accepts. */
  corruptOnGet(matches: (key: string) => boolean): this {
    this.corruptions.push(matches);
    return this;
  }

  /**
   * The next `count` calls of `op` never settle until their signal aborts (then they reject with
   * "cancelled"); a call made without a signal hangs for good.
   */
  hangNext(op: StoreOp, count = 1): this {
    this.hangs.push({ op, remaining: count });
    return this;
  }

  /** Disarms every fault; the call counts stay. */
  clearFaults(): void {
    this.counted = [];
    this.keyFaults = [];
    this.hangs = [];
    this.corruptions = [];
  }

  async put(key: ObjectKey, body: Uint8Array, options: StoreCallOptions = {}): Promise<void> {
    const after = await this.before("put", key, options.signal);
    await this.inner.put(key, body, options);
    this.after(after, "put", key);
  }

  async get(key: ObjectKey, options: StoreCallOptions = {}): Promise<Buffer> {
    const after = await this.before("get", key, options.signal);
    const body = await this.inner.get(key, options);
    this.after(after, "get", key);
    if (!this.corruptions.some((matches) => matches(key))) return body;
    if (body.length === 0) throw new Error(`FaultyStore: cannot corrupt the empty object ${key}`);
    const damaged = Buffer.from(body);
    damaged[damaged.length - 1]! ^= 0xff;
    return damaged;
  }

  async delete(key: ObjectKey, options: StoreCallOptions = {}): Promise<void> {
    const after = await this.before("delete", key, options.signal);
    await this.inner.delete(key, options);
    this.after(after, "delete", key);
  }

  async *list(prefix: string, options: StoreCallOptions = {}): AsyncIterable<ObjectInfo> {
    const after = await this.before("list", prefix, options.signal);
    yield* this.inner.list(prefix, options);
    this.after(after, "list", prefix);
  }

  /** Counts the call, applies faults due before it, and returns a fault due after it, if any. */
  private async before(
    op: StoreOp,
    key: string,
    signal: AbortSignal | undefined,
  ): Promise<CountedFault | undefined> {
    this.calls[op]++;
    if (take(this.hangs, op)) await hangUntilAborted(signal, this.description, key);
    const fault = take(this.counted, op);
    if (fault && !fault.afterCall) throw this.injected(fault.error, op, key);
    const keyFault = this.keyFaults.find((f) => (f.op === "any" || f.op === op) && f.matches(key));
    if (keyFault) throw this.injected(keyFault.error, op, key);
    return fault;
  }

  private after(fault: CountedFault | undefined, op: StoreOp, key: string): void {
    if (fault) throw this.injected(fault.error, op, key);
  }

  private injected(error: InjectedError | undefined, op: StoreOp, key: string): Error {
    if (typeof error === "function") return error(op, key);
    if (error) return error;
    return new StoreError("unavailable", `injected fault: ${op} failed`, {
      store: this.description,
      key,
    });
  }
}

/** Uses up one armed fault for `op`, if there is one. */
function take<T extends { op: StoreOp; remaining: number }>(
  faults: T[],
  op: StoreOp,
): T | undefined {
  const index = faults.findIndex((f) => f.op === op && f.remaining > 0);
  if (index < 0) return undefined;
  const fault = faults[index]!;
  fault.remaining--;
  if (fault.remaining === 0) faults.splice(index, 1);
  return fault;
}

function hangUntilAborted(
  signal: AbortSignal | undefined,
  store: string,
  key: string,
): Promise<never> {
  return new Promise((_resolve, reject) => {
    const cancel = () => reject(cancelledError(signal, { store, key }));
    if (signal?.aborted) cancel();
    else signal?.addEventListener("abort", cancel, { once: true });
  });
}
