import { execFile } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { RunningBridge } from "../bridge/bridge.ts";
import { SECRET_REFUSED } from "../bridge/reader-program.ts";
import type { StoreConfig } from "../storage/open-store.ts";
import {
  offloadNow,
  privateSocketPath,
  startTestBridge,
  testStoreConfig,
} from "./support/bridge-harness.ts";
import { tableDigest } from "./support/digest.ts";
import { fixture, segmentTables } from "./support/fixtures.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

const run = promisify(execFile);
const AS_ROOT = process.getuid?.() === 0;

/** An OS user that is neither root nor the one PostgreSQL runs as (which may be `nobody`). */
async function anotherOsUser(): Promise<string> {
  const serverUid = (await stat(inject("postgres").dataDir)).uid;
  for (const name of ["nobody", "daemon"]) {
    const uid = Number((await run("id", ["-u", name])).stdout);
    if (uid !== serverUid) return name;
  }
  throw new Error("no OS user other than the server's to try the socket as");
}

/** The segment tables' reader commands, as any database user can read them. */
async function readerCommands(db: TestDatabase): Promise<string[]> {
  const { rows } = await db.pool.query(
    `SELECT array_to_string(ftoptions, ' ') AS options FROM pg_foreign_table ft
       JOIN offload.segments s ON s.segment_table = ft.ftrelid`,
  );
  return rows.map((r) => r.options);
}

function httpGet(port: number, path: string, headers: Record<string, string> = {}) {
  return new Promise<number>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject).end();
  });
}

describe("the read endpoint on its default unix socket", () => {
  let db: TestDatabase;
  let bridge: RunningBridge;
  let cleanupStore: () => Promise<void>;
  let storeConfig: StoreConfig;
  const socket = privateSocketPath();

  beforeAll(async () => {
    db = await createTestDatabase("endpoint-unix", { reader: "file_fdw" });
    const store = await testStoreConfig("local");
    cleanupStore = store.cleanup;
    storeConfig = store.config;
    bridge = await startTestBridge(db.url, storeConfig, { overrides: { readSocket: socket } });
    await db.pool.query(fixture("events-table.sql"));
    expect((await offloadNow(db.pool, "events")).state).toBe("succeeded");
  });

  afterAll(async () => {
    await bridge?.stop();
    await db?.drop();
    await cleanupStore?.();
    await rm(dirname(socket), { recursive: true, force: true });
  });

  it("lives in a directory of mode 700 owned by the database's OS user", async () => {
    const { rows } = await db.pool.query("SELECT current_setting('data_directory') AS dir");
    const dataDir = await stat(rows[0].dir);
    const dir = await stat(dirname(socket));
    expect(dir.mode & 0o777).toBe(0o700);
    expect(dir.uid).toBe(dataDir.uid);
    for (const command of await readerCommands(db)) {
      expect(command).toContain(`--unix-socket '${socket}'`);
    }
  });

  it.skipIf(!AS_ROOT)("refuses another OS user", async () => {
    const url = `http://pg-offload/segments/1/epochs/1`;
    const attempt = run("runuser", [
      "-u",
      await anotherOsUser(),
      "--",
      "curl",
      "-sS",
      "--unix-socket",
      socket,
      url,
    ]);
    await expect(attempt).rejects.toMatchObject({
      stderr: expect.stringMatching(/Permission denied|Failed to connect|Couldn't connect/),
    });
  });

  it("refuses a socket directory others can reach, naming it", async () => {
    const shared = await mkdtemp(join(tmpdir(), "pgo-shared-"));
    await chmod(shared, 0o755);
    try {
      const store = await testStoreConfig("local");
      await expect(
        startTestBridge(db.url, store.config, {
          overrides: { readSocket: join(shared, "read.sock") },
        }),
      ).rejects.toThrow(`directory ${shared} is reachable by other users (mode 755)`);
      await store.cleanup();
    } finally {
      await rm(shared, { recursive: true, force: true });
    }
  });

  it("refuses to take over the socket of a running bridge", async () => {
    const store = await testStoreConfig("local");
    await expect(
      startTestBridge(db.url, store.config, { overrides: { readSocket: socket } }),
    ).rejects.toThrow(`another bridge already listens on ${socket}`);
    await store.cleanup();
  });

  it("with the bridge gone, cold scans fail and scans that prune every segment still work", async () => {
    const digest = await tableDigest(db.pool, "events");
    await bridge.stop();
    try {
      await expect(db.pool.query("SELECT count(*) FROM events")).rejects.toThrow(
        /program "curl .*--unix-socket.*" failed/,
      );
      const recent = new Date(Date.now() - 86_400_000).toISOString();
      const { rows } = await db.pool.query(
        "SELECT count(*)::int AS n FROM events WHERE created_at > $1",
        [recent],
      );
      expect(rows[0].n).toBeGreaterThan(0);
    } finally {
      bridge = await startTestBridge(db.url, storeConfig, { overrides: { readSocket: socket } });
    }
    expect(await tableDigest(db.pool, "events")).toBe(digest);
  });
});

describe("the read endpoint over TCP", () => {
  let db: TestDatabase;
  let bridge: RunningBridge;
  let cleanupStore: () => Promise<void>;
  let secretDir: string;
  let port: number;
  // The table before the offload that beforeAll makes for every case to read.
  let digestBefore: string;

  beforeAll(async () => {
    db = await createTestDatabase("endpoint-tcp", { reader: "file_fdw" });
    const store = await testStoreConfig("local");
    cleanupStore = store.cleanup;
    // A directory the bridge creates, so it hands it to the database's OS user.
    secretDir = join(tmpdir(), `pgo-secret-${process.pid}-${Date.now()}`);
    bridge = await startTestBridge(db.url, store.config, {
      overrides: {
        readListen: "tcp",
        readPort: 0,
        readSecretFile: join(secretDir, "read-secret"),
      },
    });
    if (bridge.endpoint.kind !== "tcp") throw new Error("expected a TCP endpoint");
    port = bridge.endpoint.port;
    await db.pool.query(fixture("events-table.sql"));
    digestBefore = await tableDigest(db.pool, "events");
    expect((await offloadNow(db.pool, "events")).state).toBe("succeeded");
  });

  afterAll(async () => {
    await bridge?.stop();
    await db?.drop();
    await cleanupStore?.();
    await rm(secretDir, { recursive: true, force: true });
  });

  it("serves PostgreSQL, which reads the secret from a file of mode 600", async () => {
    expect((await segmentTables(db.pool, "events")).length).toBeGreaterThan(0);
    expect(await tableDigest(db.pool, "events")).toBe(digestBefore);
    const file = await stat(join(secretDir, "read-secret"));
    expect(file.mode & 0o777).toBe(0o600);
  });

  it("keeps the secret out of the catalog: readers name only its file", async () => {
    const secret = (await readFile(join(secretDir, "read-secret"), "utf8")).trim();
    const commands = await readerCommands(db);
    expect(commands.length).toBeGreaterThan(0);
    for (const command of commands) {
      expect(command).not.toContain(secret);
      expect(command).toContain(`cat '${join(secretDir, "read-secret")}'`);
    }
  });

  it("refuses a request without the secret, or with a wrong one", async () => {
    const { rows } = await db.pool.query(
      "SELECT id FROM offload.segments WHERE state = 'committed' ORDER BY id LIMIT 1",
    );
    const path = `/segments/${rows[0].id}/epochs/1`;
    expect(await httpGet(port, path)).toBe(401);
    expect(await httpGet(port, path, { authorization: "Bearer not-the-secret-at-all" })).toBe(401);
    expect(await httpGet(port, path, { authorization: "Basic Zm9vOmJhcg==" })).toBe(401);
    const secret = (await readFile(join(secretDir, "read-secret"), "utf8")).trim();
    expect(await httpGet(port, path, { authorization: `Bearer ${secret}` })).toBe(200);
  });

  it("a reader with a wrong or missing secret fails the query saying so, not just exit code 22", async () => {
    const file = join(secretDir, "read-secret");
    const secret = await readFile(file, "utf8");
    const scan = "SELECT count(*) FROM events";
    try {
      await writeFile(file, "not-the-secret-at-all\n");
      await expect(db.pool.query(scan)).rejects.toMatchObject({
        message: "extra data after last expected column",
        where: expect.stringContaining(SECRET_REFUSED),
      });
      await writeFile(file, "");
      await expect(db.pool.query(scan)).rejects.toMatchObject({
        where: expect.stringContaining(SECRET_REFUSED),
      });
    } finally {
      await writeFile(file, secret);
    }
    expect((await db.pool.query(scan)).rows[0].count).toBe("20000");
    // PostgreSQL stopping early (the reader's write fails: exit 23 turned into SIGPIPE) still works.
    const cold = "SELECT id FROM events WHERE created_at < now() - interval '60 days' LIMIT 1";
    expect((await db.pool.query(cold)).rows).toHaveLength(1);
  });

  it("refuses to start with a secret file others can read", async () => {
    const loose = join(await mkdtemp(join(tmpdir(), "pgo-loose-")), "loose-secret");
    await writeFile(loose, "0123456789abcdef0123456789abcdef\n", { mode: 0o644 });
    await chmod(loose, 0o644);
    const store = await testStoreConfig("local");
    await expect(
      startTestBridge(db.url, store.config, {
        overrides: { readListen: "tcp", readPort: 0, readSecretFile: loose },
      }),
    ).rejects.toThrow(`secret file ${loose} is readable by other users (mode 644)`);
    await store.cleanup();
    await rm(dirname(loose), { recursive: true, force: true });
  });
});
