import { MessageChannel } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { describeError } from "../../storage/describe-error.ts";

/** What Piscina handed back on Node 22 for a DataCloneError in the worker: only a stack. */
function clonedDataCloneError(): Error {
  const error = new Error();
  error.stack =
    "DataCloneError: Cannot transfer object of unsupported type.\n" +
    "    at new DOMException (node:internal/per_context/domexception:76:18)\n" +
    "    at onMessage (piscina/src/worker.ts:225:10)";
  return error;
}

describe("describeError", () => {
  it("is an error's message when it has one", () => {
    expect(describeError(new Error("disk full"))).toBe("disk full");
    expect(describeError(new TypeError("x is undefined"))).toBe("x is undefined");
  });

  it("adds PostgreSQL's context, which names the function that failed", () => {
    const error = Object.assign(new Error('relation "seen_as" does not exist'), {
      code: "42P01",
      where: 'PL/pgSQL function bob.on_delete() line 1 at SQL statement\nSQL statement "DELETE"',
    });
    expect(describeError(error)).toBe(
      'relation "seen_as" does not exist (context: PL/pgSQL function bob.on_delete() line 1 at ' +
        'SQL statement; SQL statement "DELETE")',
    );
  });

  it("names an error cloned across threads by its stack's headline", () => {
    expect(clonedDataCloneError().message).toBe("");
    expect(describeError(clonedDataCloneError())).toBe(
      "DataCloneError: Cannot transfer object of unsupported type.",
    );
  });

  it("says what an error without a message is: name, code, errors inside, causes", () => {
    const refused = Object.assign(new Error(""), { code: "ECONNREFUSED" });
    expect(describeError(refused)).toBe("Error (code ECONNREFUSED)");
    // Node's connect to every address of a host name fails with one of these, message "".
    const both = new AggregateError([refused, new Error("connect ETIMEDOUT ::1:5432")]);
    expect(describeError(both)).toBe(
      "AggregateError of 2: Error (code ECONNREFUSED); connect ETIMEDOUT ::1:5432",
    );
    const wrapped = new Error("", { cause: new RangeError("offset out of range") });
    expect(describeError(wrapped)).toBe("Error caused by RangeError: offset out of range");
    const empty = new Error("", { cause: clonedDataCloneError() });
    expect(describeError(empty)).toMatch(/^Error caused by DataCloneError: Cannot transfer/);
  });

  it("an error that says nothing at all still says where it was thrown", () => {
    expect(describeError(new Error())).toMatch(
      /^Error with no message, thrown at .*describe-error\.test\.ts/,
    );
  });

  it("a cycle of causes ends", () => {
    const a = new Error("");
    const b = new Error("", { cause: a });
    Object.defineProperty(a, "cause", { value: b });
    expect(describeError(a)).toMatch(/^Error caused by Error with no message, thrown at /);
  });

  it("anything else thrown is described, never empty", () => {
    expect(describeError("")).toBe("an empty string thrown");
    expect(describeError(undefined)).toBe("undefined thrown");
    expect(describeError(null)).toBe("null thrown");
    expect(describeError(42)).toBe("number thrown: 42");
    expect(describeError({ code: "E1" })).toBe('object thrown: {"code":"E1"}');
  });

  it("a DOMException posted between threads keeps a description", async () => {
    let thrown: unknown;
    try {
      structuredClone(() => 1);
    } catch (error) {
      thrown = error;
    }
    const { port1, port2 } = new MessageChannel();
    try {
      const received = new Promise<unknown>((resolve) => port2.once("message", resolve));
      port1.postMessage(thrown);
      // Node 20 delivers {}, Node 22 an Error with the stack: either way, words.
      expect(describeError(await received)).toMatch(/could not be cloned|object thrown/);
    } finally {
      port1.close();
      port2.close();
    }
  });
});
