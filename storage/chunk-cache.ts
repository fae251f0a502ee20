/**
 * A bounded cache of stored chunks, in two tiers: a small one in memory and a larger one on local
 * disk, each evicting the least recently used chunk first.
 *
 * It holds chunks exactly as stored (compressed, and encrypted when they are), so every read from
 * it is verified like a read from the store, and an encrypted table stays encrypted at rest on the
 * bridge's disk too. Object keys are never reused (DESIGN.md decision 5), so a cached chunk can
 * never be stale: eviction is only about space. For the same reason several bridges may share one
 * directory safely; each then bounds only what it wrote itself.
 *
 * A cache must never fail a read or an offload: every disk error makes the call a miss (or skips
 * the write) and is reported through `onError`.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface ChunkCacheOptions {
  /** Bytes kept in memory; 0 keeps none. */
  memoryBytes: number;
  /** Where the disk tier lives; without it there is none. */
  dir?: string;
  /** Bytes kept on disk; 0 keeps none. */
  diskBytes: number;
  onError?: (problem: string, error: unknown) => void;
  /** Told of each lookup's result (for metrics). */
  observer?: CacheObserver;
}

export interface CacheObserver {
  hit(tier: "memory" | "disk"): void;
  miss(): void;
}

export interface ChunkCacheStats {
  memoryHits: number;
  diskHits: number;
  misses: number;
  memoryBytes: number;
  diskBytes: number;
}

export class ChunkCache {
  /** Chunks by object key. */
  private readonly memory: LruSizes<Buffer>;
  /** Files by path (a hash of the key), so that entries adopted from an earlier run fit in. */
  private readonly disk: LruSizes<true>;
  private readonly dir?: string;
  private readonly onError: (problem: string, error: unknown) => void;
  private readonly observer?: CacheObserver;
  private counters = { memoryHits: 0, diskHits: 0, misses: 0 };

  private constructor(options: ChunkCacheOptions) {
    this.memory = new LruSizes(options.memoryBytes);
    this.dir = options.diskBytes > 0 ? options.dir : undefined;
    this.disk = new LruSizes(this.dir ? options.diskBytes : 0);
    this.onError = options.onError ?? (() => {});
    this.observer = options.observer;
  }

  /** Opens the cache, adopting what an earlier run left in its directory (oldest evicted first). */
  static async open(options: ChunkCacheOptions): Promise<ChunkCache> {
    const cache = new ChunkCache(options);
    if (cache.dir) await cache.adoptDirectory(cache.dir);
    return cache;
  }

  stats(): ChunkCacheStats {
    return { ...this.counters, memoryBytes: this.memory.bytes, diskBytes: this.disk.bytes };
  }

  async get(key: string): Promise<Buffer | undefined> {
    const inMemory = this.memory.touch(key);
    if (inMemory) {
      this.counters.memoryHits++;
      this.observer?.hit("memory");
      return inMemory;
    }
    const path = this.dir && this.pathOf(this.dir, key);
    const onDisk = path && this.disk.touch(path) ? await this.readFromDisk(path, key) : undefined;
    if (!onDisk) {
      this.counters.misses++;
      this.observer?.miss();
      return undefined;
    }
    this.counters.diskHits++;
    this.observer?.hit("disk");
    this.memory.add(key, onDisk, onDisk.length);
    return onDisk;
  }

  /** Keeps a copy of `stored` under `key`; resolves once it is on disk (or skipped). */
  async put(key: string, stored: Buffer): Promise<void> {
    this.memory.add(key, stored, stored.length);
    if (!this.dir || stored.length > this.disk.capacity) return;
    const path = this.pathOf(this.dir, key);
    if (this.disk.has(path)) return;
    try {
      await writeAtomically(path, stored);
    } catch (error) {
      this.onError(`cannot write chunk ${key} to the cache`, error);
      return;
    }
    await this.removeFiles(this.disk.add(path, true, stored.length));
  }

  /** Forgets a chunk: it was found damaged, or its object was deleted. */
  async remove(key: string): Promise<void> {
    this.memory.remove(key);
    const path = this.dir && this.pathOf(this.dir, key);
    if (path && this.disk.remove(path)) await this.removeFiles([path]);
  }

  /** Empties both tiers (the benchmark measures reads from the store with it). */
  async clear(): Promise<void> {
    for (const key of this.memory.keys()) this.memory.remove(key);
    const onDisk = [...this.disk.keys()];
    for (const path of onDisk) this.disk.remove(path);
    await this.removeFiles(onDisk);
  }

  private async removeFiles(paths: string[]): Promise<void> {
    for (const path of paths) {
      await rm(path, { force: true }).catch((error: unknown) =>
        this.onError(`cannot remove ${path} from the cache`, error),
      );
    }
  }

  private async readFromDisk(path: string, key: string): Promise<Buffer | undefined> {
    try {
      const stored = await readFile(path);
      // The modification time orders the entries when the next run adopts the directory.
      const now = new Date();
      await utimes(path, now, now).catch(() => {});
      return stored;
    } catch (error) {
      this.disk.remove(path);
      // Another bridge sharing the directory may have evicted it: a miss, not a problem.
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
        this.onError(`cannot read chunk ${key} from the cache`, error);
      }
      return undefined;
    }
  }

  /** Files are named by a hash of the key: flat, fixed-length names whatever the key. */
  private pathOf(dir: string, key: string): string {
    const name = createHash("sha256").update(key).digest("hex");
    return join(dir, name.slice(0, 2), `${name.slice(2)}${ENTRY_SUFFIX}`);
  }

  private async adoptDirectory(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const entries: Array<{ path: string; size: number; used: number }> = [];
    for (const sub of await readdir(dir)) {
      for (const name of await readdir(join(dir, sub)).catch(() => [] as string[])) {
        const path = join(dir, sub, name);
        if (name.endsWith(TEMPORARY_SUFFIX)) {
          await rm(path, { force: true }); // left by a crash mid-write
          continue;
        }
        if (!name.endsWith(ENTRY_SUFFIX)) continue;
        const info = await stat(path).catch(() => undefined);
        if (info) entries.push({ path, size: info.size, used: info.mtimeMs });
      }
    }
    entries.sort((a, b) => a.used - b.used);
    for (const entry of entries) {
      await this.removeFiles(this.disk.add(entry.path, true, entry.size));
    }
  }
}

/** Written under a temporary name and renamed: a crash never leaves a partial chunk in place. */
async function writeAtomically(path: string, stored: Buffer): Promise<void> {
  const temporary = `${path}.${randomBytes(4).toString("hex")}${TEMPORARY_SUFFIX}`;
  await mkdir(join(path, ".."), { recursive: true, mode: 0o700 });
  try {
    await writeFile(temporary, stored, { mode: 0o600 });
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

const ENTRY_SUFFIX = ".chunk";
const TEMPORARY_SUFFIX = ".tmp";

/** Sizes in least-recently-used order; add() returns the keys it pushed out to stay in bounds. */
class LruSizes<V> {
  private readonly entries = new Map<string, { value: V; size: number }>();
  bytes = 0;

  constructor(readonly capacity: number) {}

  has(key: string): boolean {
    return this.entries.has(key);
  }

  keys(): IterableIterator<string> {
    return this.entries.keys();
  }

  /** The value, now the most recently used; undefined when absent. */
  touch(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  add(key: string, value: V, size: number): string[] {
    if (size > this.capacity) return [];
    this.remove(key);
    this.entries.set(key, { value, size });
    this.bytes += size;
    const evicted: string[] = [];
    for (const [oldest, entry] of this.entries) {
      if (this.bytes <= this.capacity) break;
      this.entries.delete(oldest);
      this.bytes -= entry.size;
      evicted.push(oldest);
    }
    return evicted;
  }

  remove(key: string): boolean {
    const entry = this.entries.get(key);
    if (!entry) return false;
    this.entries.delete(key);
    this.bytes -= entry.size;
    return true;
  }
}
