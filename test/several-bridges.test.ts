import { readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningBridge } from "../bridge/bridge.ts";
import type { StoreConfig } from "../storage/open-store.ts";
import {
  offloadNow,
  privateSocketPath,
  startTestBridge,
  testStoreConfig,
  waitForJob,
} from "./support/bridge-harness.ts";
import { quickBridgeEnv, spawnBridge, type BridgeProcess } from "./support/bridge-process.ts";
import { duplicatedIds, tableDigest } from "./support/digest.ts";
import { fixture, segmentTables } from "./support/fixtures.ts";
import { step } from "./support/steps.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";
import { waitUntil } from "./support/wait.ts";

const TABLES = ["t1", "t2", "t3"];

function createTable(name: string): string {
  return `CREATE TABLE ${name} (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, v text);
    INSERT INTO ${name} SELECT i, now() - (6000 - i) * interval '1 hour', md5(i::text)
      FROM generate_series(1, 6000) i;
    SELECT offload.attach_policy('${name}', 'cold_30d');`;
}

/** The reader commands of the table's segment tables. */
async function readerCommands(db: TestDatabase, table: string): Promise<string[]> {
  const { rows } = await db.pool.query(
    `SELECT array_to_string(ft.ftoptions, ' ') AS options FROM pg_foreign_table ft
       JOIN pg_inherits i ON i.inhrelid = ft.ftrelid WHERE i.inhparent = $1::regclass`,
    [table],
  );
  return rows.map((r) => r.options);
}

/** Stored objects (paths under the local store) of the given segments. */
async function objectsOf(storeDir: string, segmentIds: number[]): Promise<string[]> {
  const files = (await readdir(storeDir, { recursive: true })).map(String);
  return files.filter(
    (file) => file.endsWith(".chunk") && segmentIds.some((id) => file.includes(`/s${id}-`)),
  );
}

/** The port option of each postgres_fdw server of the database: one port per recorded bridge. */
async function remoteServerPorts(db: TestDatabase): Promise<string[]> {
  const { rows } = await db.pool.query(
    `SELECT o.option_value AS ports FROM pg_foreign_server s, pg_options_to_table(s.srvoptions) o
      WHERE s.srvname LIKE 'pg_offload_remote_%' AND o.option_name = 'port'`,
  );
  return rows.map((r) => r.ports);
}

// Through either reader: the file reader's programs name every bridge's socket and curl tries
// them in turn; postgres_fdw's servers list every bridge's SQL endpoint and libpq tries them.
describe.each(["file_fdw", "postgres_fdw"] as const)(
  "three bridges on one database, %s",
  (reader) => {
    let db: TestDatabase;
    let store: StoreConfig;
    let storeDir: string;
    let cleanupStore: () => Promise<void>;
    const digests = new Map<string, string>();
    const bridges = new Map<string, { process: BridgeProcess; socket: string }>();

    async function startBridge(name: string): Promise<string> {
      const socket = privateSocketPath();
      const process = spawnBridge({
        ...quickBridgeEnv(db.url, storeDir),
        PGOFFLOAD_READ_SOCKET: socket,
        PGOFFLOAD_WORKER_ID: name,
        PGOFFLOAD_SEGMENT_BYTES: String(128 * 1024),
        PGOFFLOAD_CHUNK_BYTES: String(32 * 1024),
        // Every bridge schedules and collects garbage on its own; nothing is kept after retiring.
        PGOFFLOAD_SCHEDULE_MS: "500",
        PGOFFLOAD_GC_GRACE_MS: "0",
      });
      bridges.set(name, { process, socket });
      await process.started();
      return socket;
    }

    async function expectEveryTableReadable(): Promise<void> {
      for (const t of TABLES) {
        expect(await tableDigest(db.pool, t)).toBe(digests.get(t));
        expect(await duplicatedIds(db.pool, t)).toBe(0);
      }
    }

    /** Each table is offloaded (the schedule queues it) and no job is left to run. */
    async function waitUntilAllOffloaded(): Promise<void> {
      await waitUntil(
        async () => {
          for (const t of TABLES) if ((await segmentTables(db.pool, t)).length === 0) return false;
          const { rows } = await db.pool.query(
            "SELECT count(*)::int AS n FROM offload.jobs WHERE state IN ('queued', 'running')",
          );
          return rows[0].n === 0;
        },
        { context: () => [...bridges.values()].map((b) => b.process.output()).join("\n") },
      );
    }

    beforeAll(async () => {
      db = await createTestDatabase("several-bridges", { reader });
      const config = await testStoreConfig("local");
      store = config.config;
      cleanupStore = config.cleanup;
      if (store.kind !== "local") throw new Error("unreachable");
      storeDir = store.dir;
      await db.pool.query(
        "SELECT offload.define_policy('cold_30d', 'created_at', interval '30 days')",
      );
      for (const t of TABLES) {
        await db.pool.query(createTable(t));
        digests.set(t, await tableDigest(db.pool, t));
      }
    });

    afterAll(async () => {
      for (const { process, socket } of bridges.values()) {
        await process.kill("SIGKILL");
        await rm(dirname(socket), { recursive: true, force: true });
      }
      await db?.drop();
      await cleanupStore?.();
    });

    // One scenario: the bridges started in the first step are the ones later steps take away.
    it("name every bridge's endpoint in every reader, and go on as bridges stop and die", async () => {
      await step("name every bridge's endpoint in every segment table's reader", async () => {
        const sockets = [await startBridge("a"), await startBridge("b"), await startBridge("c")];
        await waitUntilAllOffloaded();
        if (reader === "postgres_fdw") {
          const servers = await remoteServerPorts(db);
          expect(servers).toHaveLength(TABLES.length);
          for (const ports of servers) expect(new Set(ports.split(",")).size).toBe(sockets.length);
        } else {
          for (const t of TABLES) {
            const commands = await readerCommands(db, t);
            expect(commands.length).toBeGreaterThan(0);
            for (const command of commands) {
              for (const socket of sockets) expect(command).toContain(`--unix-socket '${socket}'`);
            }
          }
        }
        await expectEveryTableReadable();
      });

      await step(
        "go on reading, running jobs and collecting garbage with the two started last gone",
        async () => {
          // The last one started dies; the one before stops gracefully.
          const c = bridges.get("c")!.process;
          c.child.kill("SIGKILL");
          expect((await c.exited).signal).toBe("SIGKILL");
          await bridges.get("b")!.process.kill("SIGTERM");

          await expectEveryTableReadable();
          // A load-back reads every cold row through the bridge left, and retires the segments, whose
          // objects that bridge's garbage collection then removes.
          const { rows } = await db.pool.query(
            "SELECT id FROM offload.segments WHERE table_id = 't2'::regclass AND state = 'committed'",
          );
          const loadedBack = rows.map((r) => Number(r.id));
          expect(loadedBack.length).toBeGreaterThan(0);
          expect((await objectsOf(storeDir, loadedBack)).length).toBeGreaterThan(0);
          await db.pool.query("SELECT offload.load_back('t2')");
          expect(await segmentTables(db.pool, "t2")).toEqual([]);
          await waitUntil(async () => (await objectsOf(storeDir, loadedBack)).length === 0, {
            context: () => bridges.get("a")!.process.output(),
          });
          // And a job runs there: a new offload of t2.
          const jobId = Number((await db.pool.query("SELECT offload.run('t2') AS id")).rows[0].id);
          expect(await waitForJob(db.pool, jobId)).toMatchObject({
            state: "succeeded",
            locked_by: "a",
          });
          expect((await segmentTables(db.pool, "t2")).length).toBeGreaterThan(0);
          await expectEveryTableReadable();
        },
      );

      await step("go on with the first started gone, and another that died", async () => {
        await startBridge("d");
        await startBridge("e");
        for (const name of ["a", "d"]) {
          const { process } = bridges.get(name)!;
          process.child.kill("SIGKILL");
          expect((await process.exited).signal).toBe("SIGKILL");
        }
        await expectEveryTableReadable();
        const { rows } = await db.pool.query(
          "SELECT id FROM offload.segments WHERE table_id = 't3'::regclass AND state = 'committed'",
        );
        const loadedBack = rows.map((r) => Number(r.id));
        await db.pool.query("SELECT offload.load_back('t3')");
        await waitUntil(async () => (await objectsOf(storeDir, loadedBack)).length === 0, {
          context: () => bridges.get("e")!.process.output(),
        });
        const jobId = Number((await db.pool.query("SELECT offload.run('t3') AS id")).rows[0].id);
        expect(await waitForJob(db.pool, jobId)).toMatchObject({
          state: "succeeded",
          locked_by: "e",
        });
        await expectEveryTableReadable();
      });
    });
  },
);

describe("two bridges over TCP", () => {
  let db: TestDatabase;
  let cleanupStore: () => Promise<void>;
  let secretDir: string;
  const running: RunningBridge[] = [];

  beforeAll(async () => {
    db = await createTestDatabase("several-bridges-tcp", { reader: "file_fdw" });
    const store = await testStoreConfig("local");
    cleanupStore = store.cleanup;
    secretDir = join(tmpdir(), `pgo-secret-${process.pid}-${Date.now()}`);
    const overrides = {
      readListen: "tcp" as const,
      readPort: 0,
      readSecretFile: join(secretDir, "read-secret"),
    };
    running.push(await startTestBridge(db.url, store.config, { overrides }));
    running.push(await startTestBridge(db.url, store.config, { overrides }));
    await db.pool.query(fixture("events-table.sql"));
  });

  afterAll(async () => {
    for (const bridge of running) await bridge.stop();
    await db?.drop();
    await cleanupStore?.();
    await rm(secretDir, { recursive: true, force: true });
  });

  it("read on through the first when the last started stops", async () => {
    const digest = await tableDigest(db.pool, "events");
    expect((await offloadNow(db.pool, "events")).state).toBe("succeeded");
    const ports = running.map((b) => (b.endpoint.kind === "tcp" ? b.endpoint.port : 0));
    for (const command of await readerCommands(db, "events")) {
      for (const port of ports) expect(command).toContain(`:${port}/segments/`);
    }
    await running.pop()!.stop();
    expect(await tableDigest(db.pool, "events")).toBe(digest);
  });
});
