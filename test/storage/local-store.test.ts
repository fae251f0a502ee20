import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LOCAL_TEMP_DIR, LocalStore } from "../../storage/local-store.ts";
import { objectKey } from "../../storage/object-key.ts";
import type { ObjectInfo, ObjectKey } from "../../storage/object-store.ts";
import { StoreError } from "../../storage/store-errors.ts";
import { storeFailure } from "../support/store-assertions.ts";

async function keys(iterable: AsyncIterable<ObjectInfo>): Promise<string[]> {
  const out: string[] = [];
  for await (const { key } of iterable) out.push(key);
  return out;
}

describe("LocalStore", () => {
  let dir: string;
  let root: string;
  let store: LocalStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "pg-offload-local-store-"));
    root = join(dir, "nested", "root");
    store = new LocalStore(root);
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const tempFiles = () => readdir(join(root, LOCAL_TEMP_DIR));

  it("creates its root directory and stores key a/b/c as the file <root>/a/b/c", async () => {
    expect((await stat(root)).isDirectory()).toBe(true);
    await store.put(objectKey("a/b/c"), Buffer.from("abc"));
    expect((await stat(join(root, "a", "b", "c"))).size).toBe(3);
    expect(await tempFiles()).toEqual([]);
    expect(store.description).toBe(`local:${root}`);
  });

  it("never shows a partial object under the real key while a put is running", async () => {
    const key = objectKey("big/object");
    const body = randomBytes(64 * 1024 * 1024);
    const path = join(root, "big", "object");
    const seenSizes = new Set<number>();
    let done = false;
    const watcher = (async () => {
      while (!done) {
        const size = await stat(path).then(
          (s) => s.size,
          () => -1,
        );
        seenSizes.add(size);
        await new Promise((r) => setImmediate(r));
      }
    })();
    let sawTempFile = false;
    const tempWatcher = (async () => {
      while (!done) {
        if ((await tempFiles()).length > 0) sawTempFile = true;
        await new Promise((r) => setImmediate(r));
      }
    })();
    await store.put(key, body);
    done = true;
    await Promise.all([watcher, tempWatcher]);
    // Only "absent" or "complete" were ever seen, and the bytes went through a temporary file.
    expect([...seenSizes].filter((s) => s !== -1 && s !== body.length)).toEqual([]);
    expect(sawTempFile).toBe(true);
    expect((await store.get(key)).equals(body)).toBe(true);
    expect(await tempFiles()).toEqual([]);
  });

  it("an aborted put leaves either the whole object or nothing, and no temporary file", async () => {
    const body = randomBytes(16 * 1024 * 1024);
    // Aborts landing in every phase: before the write, during it, during fsync, after the rename.
    for (const delayMs of [0, 1, 2, 5, 10, 20, 50, 100, 200]) {
      const key = objectKey(`abort/${delayMs}`);
      const controller = new AbortController();
      const putting = store.put(key, body, { signal: controller.signal });
      await new Promise((r) => setTimeout(r, delayMs));
      controller.abort();
      const outcome = await putting.then(
        () => "stored",
        (e: unknown) => e,
      );
      if (outcome === "stored") {
        expect((await store.get(key)).equals(body)).toBe(true);
      } else {
        expect((outcome as StoreError).kind).toBe("cancelled");
        expect((await storeFailure(store.get(key))).kind).toBe("not_found");
      }
      expect(await tempFiles()).toEqual([]);
    }
  });

  it("a put that fails part-way removes its temporary file", async () => {
    await store.put(objectKey("file"), Buffer.from("x"));
    // "file" is a file, so "file/child" cannot become one: the failure comes after the write.
    const error = await storeFailure(store.put(objectKey("file/child"), Buffer.from("y")));
    expect(error.kind).toBe("bad_input");
    expect(error.message).toContain("file/child");
    expect(await tempFiles()).toEqual([]);
    expect((await storeFailure(store.get(objectKey("file/child")))).kind).toBe("not_found");
  });

  it("never lists temporary files, including ones a crash left behind", async () => {
    await store.put(objectKey("real"), Buffer.from("x"));
    await writeFile(join(root, LOCAL_TEMP_DIR, "left-by-a-crash.tmp"), "partial");
    expect(await keys(store.list(""))).toEqual(["real"]);
    expect(await keys(store.list(".pg"))).toEqual([]);
    expect(await keys(store.list(`${LOCAL_TEMP_DIR}/`))).toEqual([]);
  });

  it("refuses keys inside its temporary directory", async () => {
    const key = objectKey(`${LOCAL_TEMP_DIR}/x`);
    expect((await storeFailure(store.put(key, Buffer.from("x")))).kind).toBe("bad_input");
    expect((await storeFailure(store.get(key))).kind).toBe("bad_input");
    expect((await storeFailure(store.delete(key))).kind).toBe("bad_input");
  });

  it("lists in byte order, like S3, across files and directories", async () => {
    for (const key of ["a0", "a/x", "a-b", "A", "a/y/z", "ä"]) {
      await store.put(objectKey(key), Buffer.from(key));
    }
    expect(await keys(store.list(""))).toEqual(["A", "a-b", "a/x", "a/y/z", "a0", "ä"]);
    expect(await keys(store.list("a/"))).toEqual(["a/x", "a/y/z"]);
    expect(await keys(store.list("a/y"))).toEqual(["a/y/z"]);
  });

  it("skips files no key could name, and prefixes no key could start with", async () => {
    await mkdir(join(root, "dir"), { recursive: true });
    await writeFile(join(root, "dir", "back\\slash"), "x");
    await store.put(objectKey("dir/ok"), Buffer.from("x"));
    expect(await keys(store.list(""))).toEqual(["dir/ok"]);
    expect(await keys(store.list("../"))).toEqual([]);
    expect(await keys(store.list("/dir/"))).toEqual([]);
  });

  it("treats a directory where an object would be as a missing object", async () => {
    await store.put(objectKey("d/inner"), Buffer.from("x"));
    expect((await storeFailure(store.get(objectKey("d")))).kind).toBe("not_found");
    await store.delete(objectKey("d"));
    expect(existsSync(join(root, "d", "inner"))).toBe(true);
  });

  it("validates keys again, so a cast string cannot leave the root", async () => {
    const escape = "../outside" as ObjectKey;
    expect((await storeFailure(store.put(escape, Buffer.from("x")))).kind).toBe("bad_input");
    expect(existsSync(join(root, "..", "outside"))).toBe(false);
  });
});
