import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FaultyStore } from "../../storage/faulty-store.ts";
import { LocalStore } from "../../storage/local-store.ts";
import { objectKey } from "../../storage/object-key.ts";
import { isRetryableStoreError, StoreError } from "../../storage/store-errors.ts";

const k = objectKey;

async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe("FaultyStore", () => {
  let dir: string;
  let inner: LocalStore;
  let store: FaultyStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "pg-offload-faulty-"));
    inner = new LocalStore(dir);
    store = new FaultyStore(inner);
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("passes calls through and counts them per operation", async () => {
    await store.put(k("a"), Buffer.from("1"));
    await store.get(k("a"));
    await store.get(k("a"));
    await store.delete(k("a"));
    for await (const _ of store.list("")) void _;
    expect(store.calls).toEqual({ put: 1, get: 2, delete: 1, list: 1 });
    expect(store.description).toBe(inner.description);
  });

  it("failNext fails the next calls of one op with a retryable error, then recovers", async () => {
    store.failNext("put", 2);
    const first = await caught(store.put(k("a"), Buffer.from("1")));
    expect(first).toBeInstanceOf(StoreError);
    expect(isRetryableStoreError(first)).toBe(true);
    expect((first as StoreError).kind).toBe("unavailable");
    expect(await caught(store.put(k("a"), Buffer.from("1")))).toBeInstanceOf(StoreError);
    await store.put(k("a"), Buffer.from("1"));
    expect(store.calls.put).toBe(3);
    expect((await inner.get(k("a"))).toString()).toBe("1");
  });

  it("failNext with afterCall does the work and still reports failure", async () => {
    const lost = new Error("acknowledgement lost");
    store.failNext("put", 1, lost, { afterCall: true });
    expect(await caught(store.put(k("b"), Buffer.from("2")))).toBe(lost);
    expect((await inner.get(k("b"))).toString()).toBe("2");
  });

  it("failKeys fails matching keys until the faults are cleared", async () => {
    await inner.put(k("seg/1"), Buffer.from("x"));
    store.failKeys(
      (key) => key.startsWith("seg/"),
      "get",
      (op, key) => new Error(`${op} ${key}`),
    );
    expect(((await caught(store.get(k("seg/1")))) as Error).message).toBe("get seg/1");
    expect(((await caught(store.get(k("seg/1")))) as Error).message).toBe("get seg/1");
    await store.put(k("seg/2"), Buffer.from("y"));
    store.clearFaults();
    expect((await store.get(k("seg/1"))).toString()).toBe("x");
  });

  it("corruptOnGet flips a byte of what get returns, not of what is stored", async () => {
    await store.put(k("c"), Buffer.from("abc"));
    store.corruptOnGet((key) => key === "c");
    const damaged = await store.get(k("c"));
    expect(damaged.length).toBe(3);
    expect(damaged.equals(Buffer.from("abc"))).toBe(false);
    expect((await inner.get(k("c"))).toString()).toBe("abc");
  });

  it("hangNext hangs a call until its signal aborts, then rejects with cancelled", async () => {
    store.hangNext("get");
    await store.put(k("h"), Buffer.from("x"));
    const controller = new AbortController();
    let settled = false;
    const hanging = store
      .get(k("h"), { signal: controller.signal })
      .finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(settled).toBe(false);
    controller.abort();
    const error = await caught(hanging);
    expect((error as StoreError).kind).toBe("cancelled");
    expect((await store.get(k("h"))).toString()).toBe("x");
  });

  it("faults on list reject the iteration", async () => {
    store.failNext("list");
    const error = await caught(
      (async () => {
        for await (const _ of store.list("")) void _;
      })(),
    );
    expect((error as StoreError).kind).toBe("unavailable");
  });
});
