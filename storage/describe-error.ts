/**
 * What went wrong, in words, never empty: the text a job's last_error, a CLI's exit and a failed
 * query show. An error's message when it has one. Some errors have none: a DOMException cloned
 * from a worker thread arrives as a bare Error whose only text is its stack ("DataCloneError:
 * Cannot transfer object ..."), an AggregateError may carry only its errors, a socket error only a
 * code. Those are described by what they are: the stack's headline or name, the code, the errors
 * inside, the cause chain, and where it was thrown when nothing else says anything.
 *
 * In storage/, the lowest layer, so that store errors and the bridge's messages say it the same way.
 */
export function describeError(thrown: unknown): string {
  return describe(thrown, new Set());
}

const MAX_CAUSES = 5;

function describe(thrown: unknown, seen: Set<unknown>): string {
  if (!(thrown instanceof Error)) return describeValue(thrown);
  if (typeof thrown.message === "string" && thrown.message.trim() !== "") {
    return thrown.message + context(thrown);
  }
  seen.add(thrown);
  const stack = (thrown.stack ?? "").split("\n");
  // V8 writes "<name>: <message>" (or "<name>") as the stack's first line when the error is made,
  // so it keeps a DOMException's name and message after cloning has dropped both.
  // (An Error made with message "" has the headline "Error:".)
  const headline = (stack[0] ?? "").trim().replace(/:$/, "");
  const what = headline !== "" && headline !== "Error" ? headline : thrown.name || "Error";
  const parts = [what];
  const code = (thrown as { code?: unknown }).code;
  if (code !== undefined && code !== null && code !== "") parts.push(`(code ${String(code)})`);
  const inner = thrown instanceof AggregateError ? thrown.errors : [];
  if (inner.length > 0) {
    parts.push(`of ${inner.length}: ${inner.map((e) => describe(e, seen)).join("; ")}`);
  }
  const cause = (thrown as { cause?: unknown }).cause;
  if (cause !== undefined && !seen.has(cause) && seen.size < MAX_CAUSES) {
    parts.push(`caused by ${named(cause, describe(cause, seen))}`);
  }
  if (parts.length === 1 && what === (thrown.name || "Error")) {
    const at = stack.find((line) => line.trim().startsWith("at "))?.trim();
    parts.push(at ? `with no message, thrown ${at}` : "with no message");
  }
  return parts.join(" ");
}

/**
 * PostgreSQL's CONTEXT of an error raised in SQL or PL/pgSQL (node-postgres's `where`): it names
 * the function and line, such as a table owner's trigger that failed under the offload's DELETE.
 */
function context(error: Error): string {
  const where = (error as { where?: unknown }).where;
  if (typeof where !== "string" || where.trim() === "") return "";
  return ` (context: ${where.trim().split("\n").join("; ")})`;
}

/** "TypeError: x" for a cause whose message does not say what kind of error it is. */
function named(error: unknown, text: string): string {
  if (!(error instanceof Error) || error.name === "Error" || text.startsWith(error.name))
    return text;
  return `${error.name}: ${text}`;
}

/** A thrown value that is not an Error, in words. */
export function describeValue(thrown: unknown): string {
  if (typeof thrown === "string") return thrown.trim() !== "" ? thrown : "an empty string thrown";
  if (thrown === undefined || thrown === null) return `${String(thrown)} thrown`;
  let text: string;
  try {
    text = typeof thrown === "object" ? JSON.stringify(thrown) : String(thrown);
  } catch {
    text = Object.prototype.toString.call(thrown);
  }
  return `${typeof thrown} thrown: ${text}`;
}
