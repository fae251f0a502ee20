import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RunningBridge } from "../bridge/bridge.ts";
import type { CacheConfig } from "../bridge/config.ts";
import { CountingStore } from "../storage/counting-store.ts";
import { objectKey } from "../storage/object-key.ts";
import { openStore } from "../storage/open-store.ts";
import { offloadNow, startTestBridge, testStoreConfig } from "./support/bridge-harness.ts";
import { tableDigest } from "./support/digest.ts";
import { fixture, resultSet } from "./support/fixtures.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

async function cacheFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const sub of await readdir(dir)) {
    for (const name of await readdir(join(dir, sub))) files.push(join(dir, sub, name));
  }
  return files;
}

async function cacheFileSizes(dir: string): Promise<number[]> {
  return Promise.all((await cacheFiles(dir)).map(async (path) => (await stat(path)).size));
}

const sum = (sizes: number[]) => sizes.reduce((total, size) => total + size, 0);

const AWKWARD_QUERIES = [
  "SELECT * FROM awkward ORDER BY id",
  "SELECT feeling, count(*), string_agg(label, '|' ORDER BY id) FROM awkward GROUP BY 1 ORDER BY 1",
];

describe("the chunk cache", () => {
  let db: TestDatabase;
  let storeConfig: Awaited<ReturnType<typeof testStoreConfig>>;
  let store: CountingStore;
  let cacheDir: string;
  let cache: CacheConfig;
  let bridge: RunningBridge;
  let hotDigest: string;
  const start = () =>
    startTestBridge(db.url, storeConfig.config, {
      // Chunks compressed on a worker thread, as on a machine with cores to spare.
      overrides: { cache, encoderThreads: 1 },
      objectStore: store,
    });

  // Each case its own database, offloaded through a bridge with a cache of its own: the cases
  // restart bridges, damage cached files and change the bound, which no other case may see.
  beforeEach(async () => {
    db = await createTestDatabase("chunk-cache");
    storeConfig = await testStoreConfig("local");
    store = new CountingStore(openStore(storeConfig.config));
    cacheDir = await mkdtemp(join(tmpdir(), "pgo-cache-"));
    cache = { memoryBytes: 256 * 1024, dir: cacheDir, diskBytes: 64 * 1024 * 1024 };
    bridge = await start();
    await db.pool.query(fixture("events-table.sql"));
    hotDigest = await tableDigest(db.pool, "events");
    expect((await offloadNow(db.pool, "events")).state).toBe("succeeded");
  });

  afterEach(async () => {
    await bridge?.stop();
    await db?.drop();
    await storeConfig?.cleanup();
    if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
  });

  it("serves the first scan after an offload without reading the store (written through)", async () => {
    store.take();
    expect(await tableDigest(db.pool, "events")).toBe(hotDigest);
    expect(store.take().gets).toBe(0);
    expect((await cacheFiles(cacheDir)).length).toBeGreaterThan(0);
  });

  it("a restarted bridge serves from the cache it left on disk", async () => {
    await bridge.stop();
    bridge = await start();
    store.take();
    expect(await tableDigest(db.pool, "events")).toBe(hotDigest);
    expect(store.take().gets).toBe(0);
    expect(bridge.cache.stats().diskHits).toBeGreaterThan(0);
  });

  it("a damaged cached chunk is dropped and read from the store again, the answer unchanged", async () => {
    await bridge.stop();
    const [victim] = await cacheFiles(cacheDir);
    const bytes = await readFile(victim!);
    bytes[bytes.length - 3]! ^= 0x10;
    await writeFile(victim!, bytes);
    bridge = await start(); // memory tier empty: the damaged file is what it finds
    store.take();
    expect(await tableDigest(db.pool, "events")).toBe(hotDigest);
    expect(store.take().gets).toBe(1);
    store.take();
    expect(await tableDigest(db.pool, "events")).toBe(hotDigest);
    expect(store.take().gets).toBe(0); // the store's good copy replaced it
  });

  it("offload.verify reads the store, not the cache", async () => {
    const { rows } = await db.pool.query(
      "SELECT c.object_key, s.id FROM offload.chunks c JOIN offload.segments s ON s.id = c.segment_id ORDER BY c.segment_id, c.seq LIMIT 1",
    );
    const key = objectKey(rows[0].object_key);
    const original = await store.get(key);
    await store.delete(key);
    try {
      expect(await tableDigest(db.pool, "events")).toBe(hotDigest); // the cache still has it
      const verified = await db.pool.query("SELECT * FROM offload.verify('events')");
      const broken = verified.rows.filter((row) => !row.ok);
      expect(broken).toHaveLength(1);
      expect(broken[0].segment_id).toBe(String(rows[0].id));
      expect(broken[0].problem).toContain(`object missing from the store, object ${key}`);
    } finally {
      await store.put(key, original);
    }
    const again = await db.pool.query("SELECT bool_and(ok) AS ok FROM offload.verify('events')");
    expect(again.rows[0].ok).toBe(true);
  });

  it("stays within its bound on disk, and fills it", async () => {
    // What the offload wrote through: every chunk, far more than the bound below.
    const written = await cacheFileSizes(cacheDir);
    const largest = Math.max(...written);
    const diskBytes = 40 * 1024;
    expect(sum(written)).toBeGreaterThan(2 * diskBytes);
    expect(largest).toBeLessThan(diskBytes);
    await bridge.stop();
    cache = { ...cache, diskBytes };
    bridge = await start();
    store.take();
    expect(await tableDigest(db.pool, "events")).toBe(hotDigest);
    const kept = await cacheFileSizes(cacheDir);
    // Least recently used first out, only while over the bound: what stays is within it, and
    // short of it by less than one chunk (an empty cache would pass an upper bound alone).
    expect(sum(kept)).toBeLessThanOrEqual(diskBytes);
    expect(sum(kept)).toBeGreaterThan(diskBytes - largest);
    expect(bridge.cache.stats().diskBytes).toBe(sum(kept));
  });

  it("returns awkward values exactly when they come from the cache", async () => {
    cache = { ...cache, diskBytes: 64 * 1024 * 1024 };
    await bridge.stop();
    bridge = await start();
    await db.pool.query(fixture("awkward-table.sql"));
    await db.pool.query("ANALYZE awkward");
    const before = await Promise.all(AWKWARD_QUERIES.map((sql) => resultSet(db.pool, sql)));
    await db.pool.query("SELECT offload.attach_policy('public.awkward', 'cold_after_30d')");
    expect((await offloadNow(db.pool, "public.awkward")).state).toBe("succeeded");
    store.take();
    const after = await Promise.all(AWKWARD_QUERIES.map((sql) => resultSet(db.pool, sql)));
    expect(after).toEqual(before);
    expect(store.take().gets).toBe(0);
  });
});
