import { setTimeout as sleep } from "node:timers/promises";
import type { ObjectInfo, ObjectKey, ObjectStore, StoreCallOptions } from "./object-store.ts";
import { cancelledError, StoreError } from "./store-errors.ts";

/**
 * How hard a store call tries. The defaults suit a real service: a 503 or SlowDown storm of a few
 * seconds is ridden out within the call, a longer outage fails the call and is left to the job
 * queue's own, much slower backoff (PGOFFLOAD_MAX_ATTEMPTS, PGOFFLOAD_RETRY_BASE_MS).
 */
export interface RetryPolicy {
  /** Attempts per call, the first one included; 1 turns retrying off. */
  maxAttempts: number;
  /** The wait before the second attempt is between half and all of this; it doubles each time. */
  baseDelayMs: number;
  /** Cap of one wait. */
  maxDelayMs: number;
  /**
   * No put, get or delete takes longer, attempts and waits together: an attempt still running at
   * the deadline is aborted and the call fails with kind "timeout". A listing has no deadline (its
   * length grows with the store); each of its pages is bounded by the store's own timeouts.
   */
  deadlineMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 5,
  baseDelayMs: 200,
  maxDelayMs: 5_000,
  deadlineMs: 120_000,
};

export type StoreOperation = "put" | "get" | "delete" | "list";

/** One failed attempt that will be tried again, for logs. */
export interface RetryEvent {
  op: StoreOperation;
  key: string;
  /** The attempt that failed, from 1. */
  attempt: number;
  delayMs: number;
  error: StoreError;
}

/**
 * An ObjectStore that tries calls again, with jittered exponential backoff, when they fail with a
 * StoreError marked retryable (kinds "timeout" and "unavailable": 5xx, SlowDown and other
 * throttling, resets, truncated bodies, timeouts). Never retried: not_found, permission, no_space,
 * bad_input, cancelled, other, and anything that is not a StoreError (a bug, not the store).
 *
 * Why here and not only in the AWS SDK (whose own retries openStore() turns off, so that attempts
 * do not multiply): one budget of attempts and one deadline for every store, local or S3, decided
 * on our own error kinds; and the SDK retries only until a response's headers arrive, so a body cut
 * short or stalled on the way (which the S3 store reports as "unavailable" or "timeout") would
 * otherwise fail a whole job attempt or a whole query.
 *
 * Retrying a put is safe: keys are never reused by different contents (see object-store.ts), so
 * a second attempt writes the same bytes under the same key, whether or not the first one landed.
 */
export class RetryingStore implements ObjectStore {
  constructor(
    readonly inner: ObjectStore,
    readonly policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    private readonly onRetry: (event: RetryEvent) => void = () => {},
  ) {}

  get description(): string {
    return this.inner.description;
  }

  put(key: ObjectKey, body: Uint8Array, options: StoreCallOptions = {}): Promise<void> {
    return this.call("put", key, options.signal, (signal) => this.inner.put(key, body, { signal }));
  }

  get(key: ObjectKey, options: StoreCallOptions = {}): Promise<Buffer> {
    return this.call("get", key, options.signal, (signal) => this.inner.get(key, { signal }));
  }

  delete(key: ObjectKey, options: StoreCallOptions = {}): Promise<void> {
    return this.call("delete", key, options.signal, (signal) => this.inner.delete(key, { signal }));
  }

  /**
   * A listing that fails part-way is started again and skips what it already yielded: every store
   * lists in byte order of keys. Only failures in a row count against maxAttempts.
   */
  async *list(prefix: string, options: StoreCallOptions = {}): AsyncIterable<ObjectInfo> {
    let lastKey: Buffer | undefined;
    for (let failures = 0; ;) {
      try {
        for await (const object of this.inner.list(prefix, options)) {
          const key = Buffer.from(object.key);
          if (lastKey && Buffer.compare(key, lastKey) <= 0) continue;
          lastKey = key;
          failures = 0;
          yield object;
        }
        return;
      } catch (thrown) {
        failures++;
        const error = this.retryableOrThrow(thrown, options.signal);
        if (failures >= this.policy.maxAttempts) throw this.gaveUp(failures, error);
        await this.wait("list", prefix, failures, error, options.signal);
      }
    }
  }

  private async call<T>(
    op: StoreOperation,
    key: string,
    callerSignal: AbortSignal | undefined,
    attemptCall: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const started = Date.now();
    const deadline = AbortSignal.timeout(this.policy.deadlineMs);
    const signal = callerSignal ? AbortSignal.any([callerSignal, deadline]) : deadline;
    for (let attempt = 1; ; attempt++) {
      try {
        return await attemptCall(signal);
      } catch (thrown) {
        // The deadline, not the caller, aborted the attempt: the store reports that as cancelled.
        if (deadline.aborted && !callerSignal?.aborted) {
          throw this.pastDeadline(op, key, attempt, thrown);
        }
        const error = this.retryableOrThrow(thrown, callerSignal);
        if (attempt >= this.policy.maxAttempts) throw this.gaveUp(attempt, error, started);
        const delay = this.delayMs(attempt);
        if (Date.now() - started + delay >= this.policy.deadlineMs) {
          throw this.pastDeadline(op, key, attempt, error);
        }
        await this.wait(op, key, attempt, error, callerSignal, delay);
      }
    }
  }

  /** Returns the error when another attempt can help, and throws it otherwise. */
  private retryableOrThrow(thrown: unknown, callerSignal: AbortSignal | undefined): StoreError {
    if (!(thrown instanceof StoreError) || !thrown.retryable || callerSignal?.aborted) throw thrown;
    return thrown;
  }

  private async wait(
    op: StoreOperation,
    key: string,
    attempt: number,
    error: StoreError,
    signal: AbortSignal | undefined,
    delayMs = this.delayMs(attempt),
  ): Promise<void> {
    this.onRetry({ op, key, attempt, delayMs, error });
    try {
      await sleep(delayMs, undefined, { signal });
    } catch {
      throw cancelledError(signal, {
        store: this.description,
        key: op === "list" ? undefined : key,
      });
    }
  }

  /** Exponential, capped, with jitter over the upper half: retries of many calls spread out. */
  private delayMs(attempt: number): number {
    const { baseDelayMs, maxDelayMs } = this.policy;
    const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  private gaveUp(attempts: number, last: StoreError, started?: number): StoreError {
    const took = started === undefined ? "" : ` in ${Date.now() - started} ms`;
    return new StoreError(
      last.kind,
      `${last.detail} (gave up after ${plural(attempts, "attempt")}${took})`,
      {
        store: this.description,
        key: last.key,
        retryable: last.retryable,
        cause: last,
      },
    );
  }

  private pastDeadline(
    op: StoreOperation,
    key: string,
    attempts: number,
    last: unknown,
  ): StoreError {
    const before =
      last instanceof StoreError && last.kind !== "cancelled" ? `: ${last.detail}` : "";
    return new StoreError(
      "timeout",
      `${op} did not finish within its ${this.policy.deadlineMs} ms deadline ` +
        `(${plural(attempts, "attempt")})${before}`,
      { store: this.description, key, cause: last },
    );
  }
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
