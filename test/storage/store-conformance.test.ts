import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startS3Server, type LocalS3 } from "../../sandbox/s3-server.ts";
import { LocalStore } from "../../storage/local-store.ts";
import { objectKey } from "../../storage/object-key.ts";
import type { ObjectInfo, ObjectKey, ObjectStore } from "../../storage/object-store.ts";
import { S3Store } from "../../storage/s3-store.ts";
import { StoreError } from "../../storage/store-errors.ts";

interface StoreUnderTest {
  store: ObjectStore;
  /** Removes everything the run created (its directory, or its prefix and the server). */
  cleanup(): Promise<void>;
}

async function collect(iterable: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const info of iterable) out.push(info);
  return out;
}

const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** Expects the promise to reject with a StoreError of this kind, and returns that error. */
async function rejectsWithKind(promise: Promise<unknown>, kind: StoreError["kind"]) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StoreError);
  expect((error as StoreError).kind).toBe(kind);
  return error as StoreError;
}

const BAD_KEYS = [
  "",
  "/abs",
  "../escape",
  "a/../../escape",
  "a/./b",
  ".",
  "a//b",
  "a/",
  "a\\b",
  "nul\0byte",
  "tab\there",
  "x".repeat(1025),
  "lone-\ud800-surrogate",
];

/**
 * The behaviour every ObjectStore must share. `open` gives a store whose contents belong to this run
 * alone; the suite empties it at the end and checks that it is empty.
 */
function storeConformance(name: string, open: () => Promise<StoreUnderTest>): void {
  describe(`ObjectStore conformance: ${name}`, () => {
    let subject: StoreUnderTest;
    let store: ObjectStore;

    beforeAll(async () => {
      subject = await open();
      store = subject.store;
    });

    afterAll(async () => {
      if (!subject) return;
      try {
        for await (const { key } of store.list("")) await store.delete(key);
        expect(await collect(store.list(""))).toEqual([]);
      } finally {
        await subject.cleanup();
      }
    });

    it.each([
      ["an empty object", 0],
      ["a 1-byte object", 1],
      ["a 5 MB object", 5 * 1024 * 1024],
    ])("put then get returns the same bytes: %s", async (_label, size) => {
      const key = objectKey(`roundtrip/${size}.bin`);
      const body = randomBytes(size);
      await store.put(key, body);
      const back = await store.get(key);
      expect(Buffer.isBuffer(back)).toBe(true);
      expect(back.length).toBe(size);
      expect(back.equals(body)).toBe(true);
    });

    it("get of a missing key rejects with not_found, naming store and key", async () => {
      const error = await rejectsWithKind(
        store.get(objectKey("missing/nothing-here")),
        "not_found",
      );
      expect(error.retryable).toBe(false);
      expect(error.key).toBe("missing/nothing-here");
      expect(error.store).toBe(store.description);
      expect(error.message).toContain("missing/nothing-here");
      expect(error.message).toContain(store.description);
    });

    it("delete of a missing key succeeds; delete removes an object", async () => {
      await store.delete(objectKey("missing/never-written"));
      const key = objectKey("delete/me");
      await store.put(key, Buffer.from("bye"));
      await store.delete(key);
      await rejectsWithKind(store.get(key), "not_found");
      await store.delete(key);
    });

    it("list yields exactly the keys with the prefix, in byte order, with sizes", async () => {
      const inside = Array.from({ length: 25 }, (_, i) => `list/k${String(i).padStart(3, "0")}`);
      inside.push("list/sub/a", "list/sub/b");
      const near = ["lis", "other/list/x"];
      for (const [i, key] of [...inside, ...near].entries()) {
        await store.put(objectKey(key), Buffer.alloc(i));
      }
      const sizeOf = (key: string) => [...inside, ...near].indexOf(key);

      const listed = await collect(store.list("list/"));
      expect(listed.map((o) => o.key)).toEqual([...inside].sort(byteOrder));
      for (const { key, size } of listed) expect(size).toBe(sizeOf(key));

      // A plain string prefix, not only whole folders.
      expect((await collect(store.list("list/k01"))).map((o) => o.key)).toEqual(
        inside.filter((k) => k.startsWith("list/k01")),
      );
      expect((await collect(store.list("lis"))).map((o) => o.key)).toEqual(
        ["lis", ...inside].sort(byteOrder),
      );
      expect(await collect(store.list("list/nothing"))).toEqual([]);
      expect(await collect(store.list("no-such-folder/"))).toEqual([]);
    });

    it("keys with non-ASCII characters round-trip and list as written", async () => {
      const keys = ["unicode/ünïcödé/файл", "unicode/日本語 キー.chunk", "unicode/emoji-🐘+%20 x"];
      for (const key of keys) await store.put(objectKey(key), Buffer.from(key));
      for (const key of keys) expect((await store.get(objectKey(key))).toString()).toBe(key);
      const listed = (await collect(store.list("unicode/"))).map((o) => o.key);
      expect([...listed].sort(byteOrder)).toEqual([...keys].sort(byteOrder));
    });

    it("bad keys are rejected with bad_input, by objectKey() and by every method", async () => {
      for (const bad of BAD_KEYS) {
        expect(() => objectKey(bad), JSON.stringify(bad)).toThrow(StoreError);
        try {
          objectKey(bad);
        } catch (error) {
          expect((error as StoreError).kind).toBe("bad_input");
        }
        // A string cast past objectKey() must still not reach the backend.
        const cast = bad as ObjectKey;
        await rejectsWithKind(store.put(cast, Buffer.from("x")), "bad_input");
        await rejectsWithKind(store.get(cast), "bad_input");
        await rejectsWithKind(store.delete(cast), "bad_input");
      }
      expect(await collect(store.list(""))).not.toContainEqual(
        expect.objectContaining({ key: expect.stringContaining("escape") }),
      );
    });

    it("calls with an aborted signal reject with cancelled and change nothing", async () => {
      const signal = AbortSignal.abort();
      const key = objectKey("abort/never");
      await rejectsWithKind(store.put(key, Buffer.from("x"), { signal }), "cancelled");
      await rejectsWithKind(store.get(key), "not_found");

      const kept = objectKey("abort/kept");
      await store.put(kept, Buffer.from("kept"));
      await rejectsWithKind(store.get(kept, { signal }), "cancelled");
      await rejectsWithKind(store.delete(kept, { signal }), "cancelled");
      expect((await store.get(kept)).toString()).toBe("kept");
      await rejectsWithKind(collect(store.list("abort/", { signal })), "cancelled");
    });

    it("a get aborted while in flight rejects with cancelled", async () => {
      const key = objectKey("abort/big");
      await store.put(key, randomBytes(5 * 1024 * 1024));
      const controller = new AbortController();
      const reading = store.get(key, { signal: controller.signal });
      controller.abort();
      const error = await rejectsWithKind(reading, "cancelled");
      expect(error.retryable).toBe(false);
    });
  });
}

storeConformance("LocalStore", async () => {
  const dir = await mkdtemp(join(tmpdir(), "pg-offload-conformance-"));
  return {
    store: new LocalStore(join(dir, "store")),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

storeConformance("S3Store on s3rver", async () => {
  const server: LocalS3 = await startS3Server();
  const store = new S3Store({
    bucket: server.bucket,
    prefix: `conformance-${randomBytes(4).toString("hex")}`,
    region: server.region,
    endpoint: server.endpoint,
    forcePathStyle: true,
    credentials: server.credentials,
    // Small pages, so that listing 27 keys takes several ListObjectsV2 calls.
    listPageSize: 7,
  });
  return {
    store,
    cleanup: async () => {
      store.destroy();
      await server.stop();
    },
  };
});
