import { describe, expect, it } from "vitest";
import { readAhead } from "../../bridge/read-ahead.ts";

describe("readAhead", () => {
  it("yields in order while keeping at most depth fetches ahead of the consumer", async () => {
    let running = 0;
    let most = 0;
    const fetch = async (n: number) => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, (7 - n) * 3)); // later items finish first
      running--;
      return n * 10;
    };
    const seen: number[] = [];
    for await (const value of readAhead([0, 1, 2, 3, 4, 5, 6], 2, fetch)) {
      seen.push(value);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(seen).toEqual([0, 10, 20, 30, 40, 50, 60]);
    expect(most).toBe(3);
  });

  it("with depth 0 fetches one at a time", async () => {
    const started: number[] = [];
    const values = readAhead([1, 2, 3], 0, async (n) => (started.push(n), n));
    const first = await values.next();
    expect(first.value).toBe(1);
    expect(started).toEqual([1]);
    expect((await values.next()).value).toBe(2);
    expect(started).toEqual([1, 2]);
  });

  it("fails at the failed item's turn, after the items before it", async () => {
    const seen: number[] = [];
    const fetch = async (n: number) => {
      if (n === 2) throw new Error("item 2 failed");
      return n;
    };
    await expect(
      (async () => {
        for await (const value of readAhead([0, 1, 2, 3], 3, fetch)) seen.push(value);
      })(),
    ).rejects.toThrow("item 2 failed");
    expect(seen).toEqual([0, 1]);
  });
});
