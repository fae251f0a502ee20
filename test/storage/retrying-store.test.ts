import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FaultyStore } from "../../storage/faulty-store.ts";
import { LocalStore } from "../../storage/local-store.ts";
import { objectKey } from "../../storage/object-key.ts";
import type { ObjectInfo, ObjectStore, StoreCallOptions } from "../../storage/object-store.ts";
import { RetryingStore, type RetryEvent } from "../../storage/retrying-store.ts";
import { StoreError, type StoreErrorKind } from "../../storage/store-errors.ts";
import { storeFailure } from "../support/store-assertions.ts";

const k = objectKey;
const QUICK = { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20, deadlineMs: 10_000 };

describe("RetryingStore", () => {
  let dir: string;
  let faulty: FaultyStore;
  let retries: RetryEvent[];
  let store: RetryingStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "pg-offload-retrying-"));
    faulty = new FaultyStore(new LocalStore(dir));
    retries = [];
    store = new RetryingStore(faulty, QUICK, (event) => retries.push(event));
    await faulty.inner.put(k("a/1"), Buffer.from("one"));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("tries a retryable failure again and returns the answer", async () => {
    faulty.failNext("get", 2);
    expect((await store.get(k("a/1"))).toString()).toBe("one");
    expect(faulty.calls.get).toBe(3);
    expect(retries.map((r) => [r.op, r.key, r.attempt])).toEqual([
      ["get", "a/1", 1],
      ["get", "a/1", 2],
    ]);
  });

  it("gives up after maxAttempts with the last error's kind and key, saying so", async () => {
    faulty.failNext("put", 5);
    const error = await storeFailure(store.put(k("a/2"), Buffer.from("two")));
    expect(faulty.calls.put).toBe(3);
    expect(error).toMatchObject({ kind: "unavailable", key: "a/2" });
    expect(error.message).toMatch(
      /injected fault: put failed \(gave up after 3 attempts in \d+ ms\)/,
    );
    expect(error.message).toContain('key "a/2"');
  });

  it.each<StoreErrorKind>([
    "not_found",
    "permission",
    "no_space",
    "bad_input",
    "cancelled",
    "other",
  ])("never retries kind %s", async (kind) => {
    faulty.failNext("get", 1, new StoreError(kind, "no", { store: "s", key: "a/1" }));
    expect((await storeFailure(store.get(k("a/1")))).kind).toBe(kind);
    expect(faulty.calls.get).toBe(1);
  });

  it("never retries what is not a StoreError (a bug, not the store)", async () => {
    faulty.failNext("get", 1, new TypeError("bug"));
    await expect(store.get(k("a/1"))).rejects.toThrow(TypeError);
    expect(faulty.calls.get).toBe(1);
  });

  it("aborts an attempt still running at the deadline and fails with kind timeout", async () => {
    store = new RetryingStore(faulty, { ...QUICK, deadlineMs: 100 });
    faulty.hangNext("get", 5);
    const error = await storeFailure(store.get(k("a/1")));
    expect(error.kind).toBe("timeout");
    expect(error.message).toContain("get did not finish within its 100 ms deadline");
  });

  it("does not start a wait that would end past the deadline", async () => {
    store = new RetryingStore(faulty, { ...QUICK, baseDelayMs: 60_000, maxDelayMs: 60_000 });
    faulty.failNext("get", 1);
    const error = await storeFailure(store.get(k("a/1")));
    expect(error.kind).toBe("timeout");
    expect(error.message).toContain("(1 attempt): injected fault: get failed");
    expect(faulty.calls.get).toBe(1);
  });

  it("a call cancelled while it waits to retry rejects with cancelled", async () => {
    store = new RetryingStore(faulty, {
      ...QUICK,
      baseDelayMs: 60_000,
      maxDelayMs: 60_000,
      deadlineMs: 600_000,
    });
    faulty.failNext("get", 1);
    const controller = new AbortController();
    const call = store.get(k("a/1"), { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    expect((await storeFailure(call)).kind).toBe("cancelled");
    expect(faulty.calls.get).toBe(1);
  });

  it("a listing that fails part-way starts again and yields every key once", async () => {
    const keys = ["a/1", "a/2", "b/1", "b/2"];
    const flaky = new ListFailingOnce(keys, 2);
    const listed: string[] = [];
    for await (const { key } of new RetryingStore(flaky, QUICK).list("")) listed.push(key);
    expect(listed).toEqual(keys);
    expect(flaky.listings).toBe(2);
  });
});

/** Lists fixed keys; its first listing fails after `failAfter` of them. */
class ListFailingOnce implements ObjectStore {
  readonly description = "list-failing-once";
  listings = 0;
  constructor(
    private readonly keys: string[],
    private readonly failAfter: number,
  ) {}

  async put(): Promise<void> {}
  async get(): Promise<Buffer> {
    return Buffer.alloc(0);
  }
  async delete(): Promise<void> {}
  async *list(_prefix: string, _options?: StoreCallOptions): AsyncIterable<ObjectInfo> {
    const listing = ++this.listings;
    for (const [index, key] of this.keys.entries()) {
      if (listing === 1 && index === this.failAfter) {
        throw new StoreError("unavailable", "list page failed", { store: this.description });
      }
      yield { key: objectKey(key), size: 1 };
    }
  }
}
