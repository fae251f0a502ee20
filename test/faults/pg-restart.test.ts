import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installSchema } from "../../bridge/schema-installer.ts";
import { startLocalPostgres, type LocalPostgres } from "../../sandbox/local-postgres.ts";
import { quickBridgeEnv, spawnBridge, type BridgeProcess } from "../support/bridge-process.ts";
import { duplicatedIds, tableDigest } from "../support/digest.ts";
import { fixture, segmentTables } from "../support/fixtures.ts";
import { waitUntil } from "../support/wait.ts";

type Mode = "fast" | "immediate";
const MODES: Mode[] = ["fast", "immediate"];
// Mid-COPY (a chunk stored, more to come), everything stored but nothing committed, committed
// but the job not yet marked done.
const OFFLOAD_POINTS = ["after-chunk-upload@2", "before-commit", "after-commit"];

/**
 * PostgreSQL restarted (fast and immediate shutdown) while the bridge is stopped at a chosen step
 * of an offload, a rewrite and a load_back. The bridge is paused there (a pause failpoint), the
 * server restarts under it, then the bridge goes on with dead connections: it must recover by
 * itself, and every row must stay in exactly one place. A private server, so that restarting it
 * disturbs no other test file.
 */
describe("PostgreSQL restarted in the middle of jobs", { timeout: 90_000 }, () => {
  let server: LocalPostgres;
  let pool: pg.Pool;
  let scratch: string;
  let env: Record<string, string>;
  const tally = { restarts: 0, rowsChecked: 0 };
  let resumes = 0;

  beforeAll(async () => {
    server = await startLocalPostgres();
    const admin = new pg.Client({ connectionString: server.url() });
    await admin.connect();
    await admin.query("CREATE DATABASE restarts");
    await admin.end();
    pool = new pg.Pool({ connectionString: server.url("restarts"), max: 4 });
    pool.on("error", () => {}); // idle connections die with every restart; the pool replaces them
    const client = await pool.connect();
    await installSchema(client).finally(() => client.release());
    await pool.query(fixture("events-table.sql"));
    scratch = await mkdtemp(join(tmpdir(), "pgo-restart-"));
    env = quickBridgeEnv(server.url("restarts"), join(scratch, "store"));
  }, 60_000);

  afterAll(async () => {
    await pool?.end();
    await server?.stop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
    console.log(
      `FAULTS pg-restart: restarts=${tally.restarts} runs=${tally.restarts} rows_checked=${tally.rowsChecked}`,
    );
  });

  /** Starts a bridge that pauses at `point`, runs `act`, restarts the server under the pause. */
  async function restartDuring<T>(
    bridge: BridgeProcess,
    point: string,
    mode: Mode,
    resumeFile: string,
    act: () => Promise<T>,
  ): Promise<T> {
    const acting = act();
    await waitUntil(async () => bridge.output().includes(`failpoint ${point}:pause reached`));
    const restarting = server.restart(mode);
    // A fast shutdown waits for backends reading from a paused reader: let the bridge go on.
    await sleep(300);
    await writeFile(resumeFile, "");
    await restarting;
    tally.restarts++;
    await waitUntil(() =>
      pool.query("SELECT 1").then(
        () => true,
        () => false,
      ),
    );
    return acting;
  }

  function pausingBridge(point: string): { bridge: BridgeProcess; resumeFile: string } {
    const resumeFile = join(scratch, `resume-${++resumes}`);
    const bridge = spawnBridge({
      ...env,
      PGOFFLOAD_FAILPOINT: `${point}:pause`,
      PGOFFLOAD_FAILPOINT_RESUME: resumeFile,
    });
    return { bridge, resumeFile };
  }

  async function expectWhole(expected: string): Promise<void> {
    expect(await tableDigest(pool, "events")).toBe(expected);
    expect(await duplicatedIds(pool, "events")).toBe(0);
    tally.rowsChecked += Number(expected.split(":")[0]);
  }

  async function jobFinished(id: number, bridge: BridgeProcess): Promise<void> {
    await waitUntil(
      async () => {
        const { rows } = await pool.query("SELECT state FROM offload.jobs WHERE id = $1", [id]);
        return rows[0]?.state === "succeeded";
      },
      { timeoutMs: 40_000, context: () => bridge.output() },
    );
  }

  async function offloadAll(bridge: BridgeProcess): Promise<void> {
    const { rows } = await pool.query("SELECT offload.run('events') AS id");
    await jobFinished(Number(rows[0].id), bridge);
  }

  describe.each(MODES)("with %s shutdown", (mode) => {
    it.each(OFFLOAD_POINTS)("an offload paused at %s finishes after the restart", async (point) => {
      const before = await tableDigest(pool, "events");
      const { bridge, resumeFile } = pausingBridge(point);
      try {
        const jobId = await restartDuring(bridge, point, mode, resumeFile, async () =>
          Number((await pool.query("SELECT offload.run('events') AS id")).rows[0].id),
        );
        await expectWhole(before);
        await jobFinished(jobId, bridge);
        await expectWhole(before);
        expect(bridge.child.exitCode, bridge.output()).toBeNull();
        expect(bridge.output()).toMatch(/connection lost|terminat/i);
        expect((await segmentTables(pool, "events")).length).toBeGreaterThan(1);
        await pool.query("SELECT offload.load_back('events')");
        await expectWhole(before);
      } finally {
        await bridge.kill("SIGTERM");
      }
    });

    it("a rewrite paused before its swap finishes exactly once after the restart", async () => {
      const condition = `id % 97 = ${mode === "fast" ? 5 : 6}`;
      const { bridge, resumeFile } = pausingBridge("before-swap");
      try {
        await offloadAll(bridge);
        const expected = await tableDigest(
          pool,
          `(SELECT * FROM events WHERE NOT (${condition}) OR tableoid = 'events'::regclass)`,
        );
        const jobId = await restartDuring(bridge, "before-swap", mode, resumeFile, async () =>
          Number(
            (await pool.query("SELECT offload.delete_cold('events', $1) AS id", [condition]))
              .rows[0].id,
          ),
        );
        await jobFinished(jobId, bridge);
        await expectWhole(expected);
        expect(bridge.child.exitCode, bridge.output()).toBeNull();
        expect(bridge.output()).toMatch(/connection lost|terminat/i);
        await pool.query("SELECT offload.load_back('events')");
        await expectWhole(expected);
      } finally {
        await bridge.kill("SIGTERM");
      }
    });

    it("a load_back cut off by the restart changes nothing, and succeeds when run again", async () => {
      const before = await tableDigest(pool, "events");
      const { bridge, resumeFile } = pausingBridge("after-chunk-served@3");
      const session = new pg.Client({ connectionString: server.url("restarts") });
      session.on("error", () => {}); // the restart ends this session: the failure is expected
      try {
        await offloadAll(bridge);
        const segments = await segmentTables(pool, "events");
        await session.connect();
        const loading = session.query("SELECT offload.load_back('events')");
        loading.catch(() => {});
        await restartDuring(bridge, "after-chunk-served@3", mode, resumeFile, async () => {});
        await expect(loading).rejects.toThrow();
        expect(await segmentTables(pool, "events")).toEqual(segments);
        await expectWhole(before);
        await pool.query("SELECT offload.load_back('events')");
        expect(await segmentTables(pool, "events")).toEqual([]);
        await expectWhole(before);
      } finally {
        await session.end().catch(() => {});
        await bridge.kill("SIGTERM");
      }
    });
  });
});
