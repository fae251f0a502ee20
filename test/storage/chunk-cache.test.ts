import { mkdtemp, readdir, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ChunkCache } from "../../storage/chunk-cache.ts";

const chunk = (fill: number, bytes = 100) => Buffer.alloc(bytes, fill);

async function filesIn(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const sub of await readdir(dir)) {
    for (const name of await readdir(join(dir, sub))) files.push(join(sub, name));
  }
  return files;
}

describe("ChunkCache", () => {
  let dir: string;
  const errors: string[] = [];
  const onError = (problem: string) => errors.push(problem);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "pgo-cache-test-"));
    errors.length = 0;
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("keeps in memory what fits and evicts the least recently used first", async () => {
    const cache = await ChunkCache.open({ memoryBytes: 250, diskBytes: 0, onError });
    await cache.put("a", chunk(1));
    await cache.put("b", chunk(2));
    expect(await cache.get("a")).toEqual(chunk(1)); // a is now the most recent
    await cache.put("c", chunk(3)); // 300 bytes > 250: b goes
    expect(await cache.get("b")).toBeUndefined();
    expect(await cache.get("a")).toEqual(chunk(1));
    expect(await cache.get("c")).toEqual(chunk(3));
    expect(cache.stats()).toMatchObject({ memoryHits: 3, misses: 1, memoryBytes: 200 });
  });

  it("bounds the disk tier, and a chunk larger than the bound is not kept", async () => {
    const cache = await ChunkCache.open({ memoryBytes: 0, dir, diskBytes: 250, onError });
    await cache.put("a", chunk(1));
    await cache.put("b", chunk(2));
    await cache.get("a");
    await cache.put("c", chunk(3));
    await cache.put("huge", chunk(4, 1000));
    expect(await cache.get("b")).toBeUndefined();
    expect(await cache.get("huge")).toBeUndefined();
    expect(await cache.get("a")).toEqual(chunk(1));
    expect(await cache.get("c")).toEqual(chunk(3));
    expect(await filesIn(dir)).toHaveLength(2);
    expect(cache.stats()).toMatchObject({ diskHits: 3, misses: 2, diskBytes: 200 });
    expect(errors).toEqual([]);
  });

  it("a disk hit is promoted to memory", async () => {
    const cache = await ChunkCache.open({ memoryBytes: 100, dir, diskBytes: 1000, onError });
    await cache.put("a", chunk(1));
    await cache.put("b", chunk(2)); // pushes a out of memory, not off the disk
    expect(await cache.get("a")).toEqual(chunk(1));
    expect(await cache.get("a")).toEqual(chunk(1));
    expect(cache.stats()).toMatchObject({ diskHits: 1, memoryHits: 1 });
  });

  it("a new run adopts the directory, oldest first, and removes what a crash left half-written", async () => {
    const first = await ChunkCache.open({ memoryBytes: 0, dir, diskBytes: 1000, onError });
    await first.put("old", chunk(1));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await first.put("new", chunk(2));
    const [sub] = await readdir(dir);
    await writeFile(join(dir, sub!, "abc.chunk.1234.tmp"), "partial");

    const second = await ChunkCache.open({ memoryBytes: 0, dir, diskBytes: 150, onError });
    expect(await second.get("old")).toBeUndefined(); // over the new bound: the oldest went
    expect(await second.get("new")).toEqual(chunk(2));
    expect((await filesIn(dir)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("remove() and clear() forget chunks in both tiers", async () => {
    const cache = await ChunkCache.open({ memoryBytes: 1000, dir, diskBytes: 1000, onError });
    await cache.put("a", chunk(1));
    await cache.put("b", chunk(2));
    await cache.remove("a");
    expect(await cache.get("a")).toBeUndefined();
    await cache.clear();
    expect(await cache.get("b")).toBeUndefined();
    expect(await filesIn(dir)).toEqual([]);
  });

  it("a file that vanished is a miss, and a disk that fails is reported, never thrown", async () => {
    const cache = await ChunkCache.open({ memoryBytes: 0, dir, diskBytes: 1000, onError });
    await cache.put("a", chunk(1));
    await rm(dir, { recursive: true });
    expect(await cache.get("a")).toBeUndefined();
    await writeFile(dir, "not a directory");
    await cache.put("b", chunk(2));
    expect(await cache.get("b")).toBeUndefined();
    expect(errors).toEqual(["cannot write chunk b to the cache"]);
    await rm(dir);
    await mkdir(dir);
  });

  it("with no room in either tier keeps nothing, and writes nothing to its directory", async () => {
    const cache = await ChunkCache.open({ memoryBytes: 0, dir, diskBytes: 0, onError });
    await cache.put("a", chunk(1));
    expect(await cache.get("a")).toBeUndefined();
    expect(await readdir(dir)).toEqual([]);
  });
});
