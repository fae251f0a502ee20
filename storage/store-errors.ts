/**
 * The one error type every ObjectStore rejects with. Callers decide on `kind` and `retryable`, never
 * on a backend's own error codes, so the bridge behaves the same on every store.
 */
export type StoreErrorKind =
  | "not_found"
  | "bad_input"
  | "timeout"
  | "cancelled"
  | "unavailable"
  /** The store refuses us: S3 403, a file system's EACCES/EPERM/EROFS. A person must act. */
  | "permission"
  /**
   * The store is full (ENOSPC, EDQUOT). Not retried within a call: space comes back when garbage
   * collection or a person frees it, on the scale of the job queue's backoff, not of milliseconds.
   */
  | "no_space"
  | "other";

export interface StoreErrorContext {
  /** The store's description (ObjectStore.description); empty when no store is involved yet. */
  store: string;
  key?: string;
  /** Defaults by kind: "timeout" and "unavailable" are worth retrying, the rest are not. */
  retryable?: boolean;
  cause?: unknown;
}

const RETRYABLE_BY_DEFAULT: ReadonlySet<StoreErrorKind> = new Set(["timeout", "unavailable"]);

export class StoreError extends Error {
  override readonly name = "StoreError";
  readonly kind: StoreErrorKind;
  readonly retryable: boolean;
  readonly key?: string;
  readonly store: string;
  /** The message without the store and key appended, for wrappers that add to it. */
  readonly detail: string;

  constructor(kind: StoreErrorKind, detail: string, context: StoreErrorContext) {
    super(`${detail}${where(context)}`, { cause: context.cause });
    this.kind = kind;
    this.detail = detail;
    this.retryable = context.retryable ?? RETRYABLE_BY_DEFAULT.has(kind);
    this.key = context.key;
    this.store = context.store;
  }
}

function where({ store, key }: StoreErrorContext): string {
  const parts = [store && `store ${store}`, key !== undefined && `key ${JSON.stringify(key)}`];
  const named = parts.filter(Boolean);
  return named.length > 0 ? ` (${named.join(", ")})` : "";
}

export function isRetryableStoreError(error: unknown): boolean {
  return error instanceof StoreError && error.retryable;
}

/** The error for a call whose AbortSignal fired; the signal's reason is kept as the cause. */
export function cancelledError(
  signal: AbortSignal | undefined,
  context: { store: string; key?: string },
): StoreError {
  return new StoreError("cancelled", "store call cancelled", { ...context, cause: signal?.reason });
}

export function throwIfCancelled(
  signal: AbortSignal | undefined,
  context: { store: string; key?: string },
): void {
  if (signal?.aborted) throw cancelledError(signal, context);
}
