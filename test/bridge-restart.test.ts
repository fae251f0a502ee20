import { readdir, readFile, rm, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { socketIsLive } from "../bridge/endpoint-access.ts";
import type { StoreConfig } from "../storage/open-store.ts";
import { offloadNow, privateSocketPath, testStoreConfig } from "./support/bridge-harness.ts";
import { quickBridgeEnv, spawnBridge, type BridgeProcess } from "./support/bridge-process.ts";
import { duplicatedIds, tableDigest } from "./support/digest.ts";
import { fixture, segmentTables } from "./support/fixtures.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

/**
 * Processes whose environment names `socket`: every process a bridge started with it is made of
 * (the socket path is unique to this test file, so nothing else carries it).
 */
async function processesOf(socket: string): Promise<number[]> {
  const marker = `PGOFFLOAD_READ_SOCKET=${socket}\0`;
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const environ = await readFile(`/proc/${entry}/environ`, "utf8").catch(() => "");
    if (environ.includes(marker)) pids.push(Number(entry));
  }
  return pids;
}

describe("a bridge killed with SIGKILL", () => {
  let db: TestDatabase;
  let store: StoreConfig;
  let cleanupStore: () => Promise<void>;
  let env: Record<string, string>;
  const socket = privateSocketPath();
  const running: BridgeProcess[] = [];

  beforeAll(async () => {
    db = await createTestDatabase("bridge-restart");
    const config = await testStoreConfig("local");
    store = config.config;
    cleanupStore = config.cleanup;
    if (store.kind !== "local") throw new Error("unreachable");
    env = { ...quickBridgeEnv(db.url, store.dir), PGOFFLOAD_READ_SOCKET: socket };
    await db.pool.query(fixture("events-table.sql"));
  });

  afterAll(async () => {
    for (const bridge of running) await bridge.kill("SIGKILL");
    // Whatever a failed test left running under this socket goes too, by its own pid.
    for (const pid of await processesOf(socket)) process.kill(pid, "SIGKILL");
    await db?.drop();
    await cleanupStore?.();
    await rm(dirname(socket), { recursive: true, force: true });
  });

  it("through bin/pg-offload.js leaves no process behind, and starts again on its stale socket", async () => {
    const doomed = spawnBridge(env, { via: "bin" });
    running.push(doomed);
    await doomed.started();
    const digest = await tableDigest(db.pool, "events");
    expect((await offloadNow(db.pool, "events")).state).toBe("succeeded");
    expect((await segmentTables(db.pool, "events")).length).toBeGreaterThan(0);

    doomed.child.kill("SIGKILL");
    expect((await doomed.exited).signal).toBe("SIGKILL");
    // Nothing of that bridge runs on: no orphan serving reads or taking jobs.
    expect(await processesOf(socket)).toEqual([]);
    expect(await socketIsLive(socket)).toBe(false);
    // Its socket is left behind: the next start must see that nobody listens and take the path.
    expect((await stat(socket)).isSocket()).toBe(true);

    const next = spawnBridge(env, { via: "bin" });
    running.push(next);
    await next.started();
    expect(await socketIsLive(socket)).toBe(true);
    expect(await tableDigest(db.pool, "events")).toBe(digest);
    expect(await duplicatedIds(db.pool, "events")).toBe(0);
  });

  it("still refuses to take over the socket while a bridge listens on it", async () => {
    const second = spawnBridge(env);
    running.push(second);
    const { code } = await second.exited;
    expect(code).not.toBe(0);
    expect(second.output()).toContain(`another bridge already listens on ${socket}`);
    expect(await socketIsLive(socket)).toBe(true);
  });
});
