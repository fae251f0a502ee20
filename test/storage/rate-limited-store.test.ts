import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LocalStore } from "../../storage/local-store.ts";
import { objectKey } from "../../storage/object-key.ts";
import { RateLimitedStore, TokenBucket, type Clock } from "../../storage/rate-limited-store.ts";

/** A clock that moves only when someone sleeps on it: waits are added up, never spent. */
function fakeClock(): Clock & { at: number; slept: number } {
  const clock = {
    at: 0,
    slept: 0,
    now: () => clock.at,
    sleep: async (ms: number, signal?: AbortSignal) => {
      signal?.throwIfAborted();
      clock.at += ms;
      clock.slept += ms;
    },
  };
  return clock;
}

describe("TokenBucket", () => {
  it("lets one second's allowance through at once, then spaces calls to the rate", async () => {
    const clock = fakeClock();
    const bucket = new TokenBucket(100, clock);
    await bucket.take(100);
    expect(clock.slept).toBe(0);
    await bucket.take(50);
    expect(clock.slept).toBeCloseTo(500);
    await bucket.take(250); // larger than the bucket: passes after its time
    expect(clock.slept).toBeCloseTo(3000);
  });

  it("refills with idle time, up to one second's worth", async () => {
    const clock = fakeClock();
    const bucket = new TokenBucket(10, clock);
    await bucket.take(10);
    clock.at += 60_000;
    await bucket.take(10);
    await bucket.take(5);
    expect(clock.slept).toBeCloseTo(500);
  });
});

describe("RateLimitedStore", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "pgo-rate-"));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("paces writes by bytes and requests, deletes by requests, and never reads", async () => {
    const clock = fakeClock();
    const store = new RateLimitedStore(
      new LocalStore(dir),
      { bytesPerSecond: 1000, requestsPerSecond: 2 },
      clock,
    );
    for (let i = 0; i < 4; i++) await store.put(objectKey(`k${i}`), Buffer.alloc(1000));
    // 4,000 bytes at 1,000/s with 1,000 free: 3 s; 4 requests at 2/s with 2 free: 1 s, overlapping.
    expect(clock.slept).toBeCloseTo(3000);
    const before = clock.slept;
    expect(await store.get(objectKey("k0"))).toHaveLength(1000);
    expect(clock.slept).toBe(before);
    await store.delete(objectKey("k0"));
    await store.delete(objectKey("k1"));
    await store.delete(objectKey("k2"));
    expect(clock.slept).toBeGreaterThan(before);
  });

  it("a call cancelled while it waits fails as cancelled and stores nothing", async () => {
    const store = new RateLimitedStore(new LocalStore(dir), {
      bytesPerSecond: 10,
      requestsPerSecond: 0,
    });
    const aborted = new AbortController();
    const put = store.put(objectKey("big"), Buffer.alloc(1000), { signal: aborted.signal });
    aborted.abort();
    await expect(put).rejects.toMatchObject({ kind: "cancelled" });
    await expect(store.get(objectKey("big"))).rejects.toMatchObject({ kind: "not_found" });
  });
});
