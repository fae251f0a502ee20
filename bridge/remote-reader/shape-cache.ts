/**
 * The parts of segment shapes worth keeping between scans (read plan, chunks with their
 * statistics under today's names), per (segment, epoch), each with the version it was computed
 * at (offload.remote_segment_head). An entry is served only while the catalog still reports that
 * very version: a changed version replaces it, never serves it. Least recently used entries go
 * first once `capacity` is reached. Per bridge process; holds no rows, only catalog data, and
 * whose segment it is gets checked on every scan before an entry is looked up.
 */
export class ShapeCache<T> {
  /** Map iteration order is insertion order: re-inserting on use keeps the oldest first. */
  private readonly entries = new Map<string, { version: string; value: T }>();

  constructor(private readonly capacity: number) {}

  /** The entry for `key` if it was stored at `version`; undefined otherwise. */
  get(key: string, version: string): T | undefined {
    const entry = this.entries.get(key);
    if (!entry || entry.version !== version) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  /** The version stored for `key`, if any (to ask the catalog whether it still holds). */
  versionOf(key: string): string | undefined {
    return this.entries.get(key)?.version;
  }

  set(key: string, version: string, value: T): void {
    if (this.capacity <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, { version, value });
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
