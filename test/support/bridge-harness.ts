import { mkdtempSync, rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, inject } from "vitest";
import type pg from "pg";
import { startBridge, type RunningBridge } from "../../bridge/bridge.ts";
import { bridgeConfig, type BridgeConfig } from "../../bridge/config.ts";
import { silentLogger } from "../../bridge/log.ts";
import type { StoreConfig } from "../../storage/open-store.ts";
import type { ObjectStore } from "../../storage/object-store.ts";

export const NO_CACHE = { memoryBytes: 0, dir: "", diskBytes: 0 };

export type StoreKind = "local" | "s3";

/** A store configuration of the given kind, under a prefix or directory of the test's own. */
export async function testStoreConfig(kind: StoreKind): Promise<{
  config: StoreConfig;
  cleanup(): Promise<void>;
}> {
  if (kind === "local") {
    const dir = await mkdtemp(join(tmpdir(), "pg-offload-store-"));
    // Removed with the test file too, for the callers that never call cleanup().
    scratchDirs.push(dir);
    return { config: { kind, dir }, cleanup: () => rm(dir, { recursive: true, force: true }) };
  }
  const { endpoint, bucket } = inject("s3");
  process.env.AWS_ACCESS_KEY_ID ??= "S3RVER";
  process.env.AWS_SECRET_ACCESS_KEY ??= "S3RVER";
  const prefix = `test-${Math.random().toString(36).slice(2, 10)}`;
  return {
    config: { kind, bucket, prefix, endpoint, forcePathStyle: true, region: "us-east-1" },
    cleanup: async () => {},
  };
}

const scratchDirs: string[] = [];
// Removed once the test file is done: its bridges (in process or spawned) have stopped by then.
afterAll(() => {
  for (const dir of scratchDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A read socket path of the bridge's own, in a fresh directory of mode 700. */
export function privateSocketPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "pgo-read-"));
  scratchDirs.push(dir);
  return join(dir, "read.sock");
}

/**
 * Settings that make a test bridge quick (tiny chunks and segments, fast polling and leases) and
 * predictable: no schedule, so jobs run only when a test asks, and no chunk cache, so every read
 * reaches the store the test damages or counts (test/chunk-cache.test.ts turns it on).
 */
export function testBridgeConfig(
  databaseUrl: string,
  store: StoreConfig,
  overrides: Partial<BridgeConfig> = {},
): BridgeConfig {
  return bridgeConfig(
    { databaseUrl, store },
    {
      readSocket: privateSocketPath(),
      chunkBytes: 64 * 1024,
      segmentTargetBytes: 1024 * 1024,
      pollIntervalMs: 200,
      scheduleIntervalMs: 0,
      jobLeaseMs: 3_000,
      retryBaseDelayMs: 100,
      cache: NO_CACHE,
      shutdownGraceMs: 2_000,
      ...overrides,
    },
  );
}

export async function startTestBridge(
  databaseUrl: string,
  store: StoreConfig,
  options: { overrides?: Partial<BridgeConfig>; objectStore?: ObjectStore } = {},
): Promise<RunningBridge> {
  return startBridge(testBridgeConfig(databaseUrl, store, options.overrides), {
    log: process.env.PGOFFLOAD_TEST_LOG ? undefined : silentLogger,
    store: options.objectStore,
  });
}

export interface JobRow {
  id: string;
  state: string;
  attempts: number;
  retries: number;
  last_error: string | null;
  rows_done: string;
  segments_done: number;
  segments_total: number | null;
}

/** Waits until the job has finished (succeeded or failed) and returns its row. */
export async function waitForJob(db: pg.Pool, jobId: number, timeoutMs = 60_000): Promise<JobRow> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await db.query<JobRow>("SELECT * FROM offload.jobs WHERE id = $1", [jobId]);
    const job = rows[0];
    if (job && (job.state === "succeeded" || job.state === "failed")) return job;
    if (Date.now() > deadline)
      throw new Error(`job ${jobId} still ${job?.state} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Queues an offload of the table and waits for it to finish. */
export async function offloadNow(db: pg.Pool, table: string): Promise<JobRow> {
  const { rows } = await db.query("SELECT offload.run($1) AS id", [table]);
  return waitForJob(db, Number(rows[0].id));
}
