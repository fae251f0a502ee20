import { execFileSync } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import type { RunningBridge } from "../../bridge/bridge.ts";
import {
  FAULT_KINDS,
  startS3FaultProxy,
  type FaultRule,
  type S3FaultProxy,
} from "../../sandbox/s3-fault-proxy.ts";
import { decodeChunk } from "../../storage/chunk-format.ts";
import { LOCAL_TEMP_DIR } from "../../storage/local-store.ts";
import { objectKey } from "../../storage/object-key.ts";
import { S3Store } from "../../storage/s3-store.ts";
import type { StoreConfig } from "../../storage/open-store.ts";
import { offloadNow, startTestBridge, testStoreConfig } from "../support/bridge-harness.ts";
import { duplicatedIds, tableDigest } from "../support/digest.ts";
import { expectColdReadFailure, fixture, segmentTables } from "../support/fixtures.ts";
import { storeFailure } from "../support/store-assertions.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";

// What this file did, printed at the end as one line for the run's report.
const tally = { injected: 0, runs: 0, rowsChecked: 0 };

// Short timeouts and quick retries, so a hang costs about a second per attempt. Three attempts per
// store call; two attempts per job, so that a persistent fault ends the job quickly.
const RETRY = { maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 200, deadlineMs: 10_000 };
// One upload at a time, so that the faults each job attempt meets can be counted exactly.
const JOB_OVERRIDES = { maxAttempts: 2, retryBaseDelayMs: 100, uploadConcurrency: 1 };
const S3_TIMEOUTS = { connectTimeoutMs: 1_000, idleTimeoutMs: 1_000 };

const TABLE_ROWS = 20_000;

/** A fresh copy of the events fixture under its own name, with the policy attached. */
async function freshTable(db: TestDatabase, name: string): Promise<string> {
  await db.pool.query(`CREATE TABLE ${name} (LIKE events INCLUDING ALL)`);
  await db.pool.query(`INSERT INTO ${name} SELECT * FROM events`);
  await db.pool.query(`ANALYZE ${name}`);
  await db.pool.query("SELECT offload.attach_policy($1, 'cold_after_30d')", [name]);
  return tableDigest(db.pool, name);
}

/** The table's digest (hot and cold), counted as rows checked. */
async function checkedDigest(db: TestDatabase, table: string): Promise<string> {
  const digest = await tableDigest(db.pool, table);
  tally.rowsChecked += Number(digest.split(":")[0]);
  tally.runs++;
  return digest;
}

async function offload(db: TestDatabase, table: string) {
  tally.runs++;
  return offloadNow(db.pool, table);
}

/** Nothing of the failed job is visible: every row hot, no segment committed, none pending. */
async function expectUntouched(db: TestDatabase, table: string, digest: string): Promise<void> {
  expect(await segmentTables(db.pool, table)).toEqual([]);
  const hot = await db.pool.query(`SELECT count(*)::int AS n FROM ONLY ${table}`);
  expect(hot.rows[0].n).toBe(TABLE_ROWS);
  const segments = await db.pool.query(
    `SELECT count(*)::int AS n FROM offload.segments
      WHERE table_id = $1::regclass AND state <> 'aborted'`,
    [table],
  );
  expect(segments.rows[0].n).toBe(0);
  expect(await checkedDigest(db, table)).toBe(digest);
}

async function expectOffloaded(db: TestDatabase, table: string, digest: string): Promise<void> {
  expect((await segmentTables(db.pool, table)).length).toBeGreaterThan(0);
  expect(await checkedDigest(db, table)).toBe(digest);
  expect(await duplicatedIds(db.pool, table)).toBe(0);
}

describe("S3 behind a fault-injecting proxy", () => {
  let proxy: S3FaultProxy;
  let db: TestDatabase;
  let bridge: RunningBridge;

  beforeAll(async () => {
    proxy = await startS3FaultProxy(inject("s3").endpoint);
    db = await createTestDatabase("store-faults-s3");
    await db.pool.query(fixture("events-table.sql"));
    // The source rows stay hot: each test offloads a copy of its own.
    await db.pool.query("SELECT offload.detach_policy('events')");
    const { config } = await testStoreConfig("s3");
    if (config.kind !== "s3") throw new Error("unreachable");
    const store: StoreConfig = {
      ...config,
      ...S3_TIMEOUTS,
      endpoint: proxy.endpoint,
      retry: RETRY,
    };
    bridge = await startTestBridge(db.url, store, { overrides: JOB_OVERRIDES });
  });

  afterAll(async () => {
    await bridge?.stop();
    await db?.drop();
    if (proxy) tally.injected += proxy.counts().faults;
    await proxy?.close();
  });

  afterEach(() => {
    // A test that failed before lifting its fault must not leave it armed for the next one.
    proxy.clear();
    // Every dropped connection was one a test asked for.
    expect(proxy.counts().proxyErrors).toEqual([]);
  });

  let uploadTables = 0;
  // The 2nd and 3rd PUT fail: the second chunk's upload fails twice and its third attempt lands.
  const transientUploads: Array<[string, FaultRule]> = [
    ...FAULT_KINDS.map((fault): [string, FaultRule] => [fault, { fault }]),
    ["reset after the object was stored", { fault: "reset", afterUpstream: true }],
  ];
  it.each(transientUploads)(
    "upload fault %s, twice in a row: retried within the call, the offload succeeds",
    async (_name, rule) => {
      const table = `up_${++uploadTables}`;
      const digest = await freshTable(db, table);
      const armed = proxy.inject({ ...rule, method: "PUT", skip: 1, times: 2 });
      const job = await offload(db, table);
      armed.lift();
      expect(armed.injected).toBe(2);
      expect(job).toMatchObject({ state: "succeeded", attempts: 1 });
      await expectOffloaded(db, table, digest);
    },
  );

  it.each(FAULT_KINDS)(
    "upload fault %s on every PUT: the job fails cleanly naming the object, then succeeds once lifted",
    async (fault) => {
      const table = `stuck_${fault.toLowerCase()}`;
      const digest = await freshTable(db, table);
      const armed = proxy.inject({ fault, method: "PUT" });
      const failed = await offload(db, table);
      armed.lift();
      expect(failed).toMatchObject({ state: "failed", attempts: JOB_OVERRIDES.maxAttempts });
      // Every attempt of the job spent the store's whole budget on its first chunk.
      expect(armed.injected).toBe(JOB_OVERRIDES.maxAttempts * RETRY.maxAttempts);
      expect(failed.last_error).toMatch(/gave up after 3 attempts|deadline/);
      expect(failed.last_error).toMatch(/key "[0-9a-f]+\/s\d+-[0-9a-f]+\/e1\/000001\.chunk"/);
      await expectUntouched(db, table, digest);

      expect((await offload(db, table)).state).toBe("succeeded");
      await expectOffloaded(db, table, digest);
    },
  );

  it("a GET body cut short never comes back as a short object: Node's HTTP client fails it first", async () => {
    const { config } = await testStoreConfig("s3");
    if (config.kind !== "s3") throw new Error("unreachable");
    const direct = new S3Store({ ...config, endpoint: proxy.endpoint, maxAttempts: 1 });
    try {
      const key = objectKey("truncation/probe.chunk");
      await direct.put(key, Buffer.alloc(256 * 1024, 7));
      const armed = proxy.inject({ fault: "truncate", method: "GET", times: 1 });
      const error = await storeFailure(direct.get(key));
      expect(armed.injected).toBe(1);
      // "aborted" (ECONNRESET) from the response stream; the store's own Content-Length check and
      // then the chunk's length and CRC are further lines, for a client that would not notice.
      expect(error).toMatchObject({ kind: "unavailable", retryable: true, key });
      expect(error.message).toMatch(/ECONNRESET: aborted/);
      expect((await direct.get(key)).length).toBe(256 * 1024);
    } finally {
      direct.destroy();
    }
  });

  it("a GET body damaged in transit, from a service that sends checksums: the SDK's mismatch is retryable", async () => {
    const { config } = await testStoreConfig("s3");
    if (config.kind !== "s3") throw new Error("unreachable");
    const direct = new S3Store({ ...config, endpoint: proxy.endpoint, maxAttempts: 1 });
    try {
      const key = objectKey("checksummed/probe.chunk");
      await direct.put(key, Buffer.alloc(4096, 7));
      const armed = proxy.inject({ fault: "corruptChecksummed", method: "GET", times: 1 });
      const error = await storeFailure(direct.get(key));
      expect(armed.injected).toBe(1);
      // Was kind "other", not retried: a query failed with "store read failed (other)".
      expect(error).toMatchObject({ kind: "unavailable", retryable: true, key });
      expect(error.message).toMatch(/Checksum mismatch: expected .*x-amz-checksum-crc32/);
      expect((await direct.get(key)).equals(Buffer.alloc(4096, 7))).toBe(true);
    } finally {
      direct.destroy();
    }
  });

  describe("reads of an offloaded table", () => {
    let digest: string;
    let victim: { key: string; segmentTable: string };

    beforeAll(async () => {
      digest = await freshTable(db, "cold");
      expect((await offload(db, "cold")).state).toBe("succeeded");
      const { rows } = await db.pool.query(
        `SELECT c.object_key, s.segment_table::text
           FROM offload.chunks c JOIN offload.segments s ON s.id = c.segment_id
          WHERE s.table_id = 'cold'::regclass AND s.state = 'committed'
          ORDER BY c.segment_id, c.seq`,
      );
      expect(rows.length).toBeGreaterThan(3);
      // A chunk in the middle of a segment: rows before it have already been sent when it fails.
      const middle = rows[Math.floor(rows.length / 2)];
      victim = { key: middle.object_key, segmentTable: middle.segment_table };
    });

    it.each(FAULT_KINDS)(
      "read fault %s, twice on one chunk: the scan returns the exact full result",
      async (fault) => {
        const armed = proxy.inject({
          fault,
          method: "GET",
          key: (k) => k.endsWith(`/${victim.key}`),
          times: 2,
        });
        expect(await checkedDigest(db, "cold")).toBe(digest);
        armed.lift();
        expect(armed.injected).toBe(2);
      },
    );

    it.each(FAULT_KINDS)(
      "read fault %s on every fetch of one chunk: the query fails naming the object, no rows",
      async (fault) => {
        const armed = proxy.inject({
          fault,
          method: "GET",
          key: (k) => k.endsWith(`/${victim.key}`),
        });
        try {
          tally.runs++;
          // Rows streamed to the client, not an aggregate: an error must replace all of them.
          const failure = db.pool.query(`SELECT * FROM cold ORDER BY id`);
          // Damage the chunk CRC finds is fetched again by the endpoint; damage the SDK finds
          // (the service sent a checksum) is retried by the store: three reads either way.
          const problem =
            fault === "corrupt"
              ? "checksum mismatch"
              : fault === "hang"
                ? "store read failed (timeout)"
                : "store read failed (unavailable)";
          await expectColdReadFailure(failure, `pg-offload: ${problem}, object ${victim.key}`);
          // Three store attempts per fetch; a damaged chunk is fetched three times.
          expect(armed.injected).toBe(3);
        } finally {
          armed.lift();
        }
        expect(await checkedDigest(db, "cold")).toBe(digest);
      },
    );
  });
});

/** Mounts a tmpfs of `size` at `dir`; the reason when this machine does not let us. */
function tryMount(dir: string, size: string): string | undefined {
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stdio: "pipe" });
    return undefined;
  } catch (error) {
    return String((error as { stderr?: Buffer }).stderr ?? error).trim();
  }
}

function remount(dir: string, options: string): void {
  execFileSync("mount", ["-o", `remount,${options}`, dir], { stdio: "pipe" });
}

describe("a local store on a small tmpfs", () => {
  let mountPoint: string;
  let unmountable: string | undefined;
  let db: TestDatabase;
  let bridge: RunningBridge;

  beforeAll(async () => {
    mountPoint = await mkdtemp(join(tmpdir(), "pg-offload-tmpfs-"));
    // 64 KiB holds a few compressed chunks of the table, not all of them.
    unmountable = tryMount(mountPoint, "64k");
    if (unmountable) return;
    db = await createTestDatabase("store-faults-local");
    await db.pool.query(fixture("events-table.sql"));
    await db.pool.query("SELECT offload.detach_policy('events')");
    bridge = await startTestBridge(
      db.url,
      { kind: "local", dir: mountPoint },
      { overrides: JOB_OVERRIDES },
    );
  });

  afterAll(async () => {
    await bridge?.stop();
    await db?.drop();
    if (mountPoint && !unmountable) execFileSync("umount", [mountPoint], { stdio: "pipe" });
    if (mountPoint) await rm(mountPoint, { recursive: true, force: true });
  });

  function skipUnlessMounted(ctx: { skip(note?: string): never }): void {
    if (unmountable) {
      ctx.skip(`cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): ${unmountable}`);
    }
  }

  /** No upload left half-written: no temporary file, and every object is a whole chunk. */
  async function expectOnlyWholeObjects(): Promise<void> {
    expect(await readdir(join(mountPoint, LOCAL_TEMP_DIR))).toEqual([]);
    const entries = await readdir(mountPoint, { recursive: true, withFileTypes: true });
    for (const entry of entries.filter((e) => e.isFile())) {
      const stored = await readFile(join(entry.parentPath, entry.name));
      expect(() => decodeChunk(stored)).not.toThrow();
    }
  }

  it("a full file system: the job fails with ENOSPC naming the object, then succeeds with room", async (ctx) => {
    skipUnlessMounted(ctx);
    const digest = await freshTable(db, "full_disk");
    const failed = await offload(db, "full_disk");
    tally.injected++;
    expect(failed).toMatchObject({ state: "failed", attempts: JOB_OVERRIDES.maxAttempts });
    expect(failed.last_error).toMatch(/ENOSPC: no space left on device/);
    expect(failed.last_error).toMatch(/key "[0-9a-f]+\/s\d+-[0-9a-f]+\/e1\/\d{6}\.chunk"/);
    await expectUntouched(db, "full_disk", digest);
    await expectOnlyWholeObjects();

    remount(mountPoint, "size=64m");
    expect((await offload(db, "full_disk")).state).toBe("succeeded");
    await expectOffloaded(db, "full_disk", digest);
  });

  it("a read-only store directory: the job fails with EROFS, then succeeds once writable", async (ctx) => {
    skipUnlessMounted(ctx);
    const digest = await freshTable(db, "readonly");
    remount(mountPoint, "ro");
    let failed;
    try {
      failed = await offload(db, "readonly");
      tally.injected++;
    } finally {
      remount(mountPoint, "rw");
    }
    expect(failed).toMatchObject({ state: "failed", attempts: JOB_OVERRIDES.maxAttempts });
    expect(failed.last_error).toMatch(/EROFS: read-only file system/);
    expect(failed.last_error).toMatch(/key "[0-9a-f]+\/s\d+-[0-9a-f]+\/e1\/000001\.chunk"/);
    await expectUntouched(db, "readonly", digest);

    expect((await offload(db, "readonly")).state).toBe("succeeded");
    await expectOffloaded(db, "readonly", digest);
  });
});

afterAll(() => {
  console.log(
    `FAULTS store: injected=${tally.injected} runs=${tally.runs} rows_checked=${tally.rowsChecked}`,
  );
});
