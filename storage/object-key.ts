import type { ObjectKey } from "./object-store.ts";
import { StoreError } from "./store-errors.ts";

// S3's limit on a key, in UTF-8 bytes; checking it here makes a too-long key fail the same way, and
// before any upload, on every store.
const MAX_KEY_BYTES = 1024;

/**
 * Validates a relative, slash-separated key. The rules exist so that a key can never name anything
 * outside a store's root or prefix (no absolute paths, no `.` or `..`), and so that the local and
 * S3 stores agree on which keys exist (no empty segments, which a file system would collapse; no
 * characters that either of them would store under a different name).
 */
export function objectKey(s: string): ObjectKey {
  const problem = keyProblem(s);
  if (problem) {
    throw new StoreError("bad_input", `invalid object key: ${problem}`, { store: "", key: s });
  }
  return s as ObjectKey;
}

function keyProblem(s: string): string | undefined {
  if (typeof s !== "string" || s.length === 0) return "empty";
  if (Buffer.byteLength(s, "utf8") > MAX_KEY_BYTES) return `longer than ${MAX_KEY_BYTES} bytes`;
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    if (code === 0) return "contains NUL";
    // Control characters cannot travel in the XML of an S3 listing without URL-encoding it.
    if (code < 0x20 || code === 0x7f) return "contains a control character";
    if (code === 0x5c) return "contains a backslash";
  }
  // An unpaired surrogate has no UTF-8 form: S3 and the file system would store a different name.
  if (/\p{Surrogate}/u.test(s)) return "contains an unpaired UTF-16 surrogate";
  if (s.startsWith("/")) return "absolute (leading '/')";
  for (const segment of s.split("/")) {
    if (segment === "") return "empty path segment";
    if (segment === "." || segment === "..") return `'${segment}' path segment`;
  }
  return undefined;
}

/** True when `s` is a valid key; for filtering names that did not come from objectKey(). */
export function isObjectKey(s: string): s is ObjectKey {
  return keyProblem(s) === undefined;
}
