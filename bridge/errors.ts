import { describeValue } from "../storage/describe-error.ts";

/** Turns whatever was thrown into an Error, so every catch can log and rethrow with context. */
export function toError(thrown: unknown): Error {
  return thrown instanceof Error ? thrown : new Error(describeValue(thrown));
}

// Errors about the table or the request itself: retrying cannot help until a person acts.
const PERMANENT_SQLSTATE_CLASSES = new Set(["42", "0A", "22"]);

export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

const CONNECTION_LOSS_STATES = new Set(["57P01", "57P02", "57P03", "08000", "08003", "08006"]);

/**
 * The server connection died or could not be made (a restart, a network cut): an idempotent query
 * can simply be sent again on a fresh connection. node-postgres reports a socket closed under it
 * without a SQLSTATE.
 */
export function isConnectionLoss(error: unknown): boolean {
  const code = sqlState(error);
  if (code) return CONNECTION_LOSS_STATES.has(code);
  const message = (error as { message?: unknown } | null)?.message;
  const errno = (error as { code?: unknown } | null)?.code;
  return (
    (typeof message === "string" && /Connection terminated/i.test(message)) ||
    errno === "ECONNRESET" ||
    errno === "ECONNREFUSED" ||
    errno === "EPIPE"
  );
}

// Conflicts with other sessions: the job did nothing wrong and the same work, run again, succeeds
// once the other sessions are done. A job retries these without using an attempt (job-worker.ts).
const CONFLICT_SQLSTATES = new Set([
  "40001", // serialization_failure: a copied row changed before the commit
  "40P01", // deadlock_detected
  "55P03", // lock_not_available: the commit's lock_timeout (queries on the table ran long)
]);

/** Did the job fail only because other sessions were in its way (its error, or what caused it)? */
export function isConflictError(error: unknown): boolean {
  const code = sqlState(error) ?? sqlState((error as { cause?: unknown } | null)?.cause);
  return code !== undefined && CONFLICT_SQLSTATES.has(code);
}

/** Should a failed job be tried again later (within its attempt limit)? */
export function isPermanentJobError(error: unknown): boolean {
  const code = sqlState(error);
  return code !== undefined && PERMANENT_SQLSTATE_CLASSES.has(code.slice(0, 2));
}

/** Exponential backoff with full jitter, capped. */
export function backoffDelayMs(attempt: number, baseMs: number, capMs = 10 * 60_000): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

export class OffloadError extends Error {
  constructor(
    message: string,
    readonly context: { table?: string; segment?: number; key?: string } = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "OffloadError";
  }
}
