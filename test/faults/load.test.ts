import { serverTool } from "../support/server-tools.ts";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { testStoreConfig, waitForJob } from "../support/bridge-harness.ts";
import { spawnBridge, type BridgeProcess } from "../support/bridge-process.ts";
import { duplicatedIds, tableDigest } from "../support/digest.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";

const run = promisify(execFile);

const ROWS = 100_000;
const WORKLOAD_SECONDS = 20;
const WORKLOAD_CLIENTS = 6;
const SCAN_CLIENTS = 32;

// Each transaction changes `events` and, identically, `shadow` (never offloaded): whatever the
// offloads do meanwhile, the two must hold the same rows at the end. Inserts land in the hot and
// the cold range alike; updates and deletes touch hot rows only (ONLY), as cold rows refuse them.
const WORKLOAD = `
\\set id random(1, ${ROWS})
\\set age random(0, 200 * 24)
BEGIN;
WITH r AS (INSERT INTO events VALUES (nextval('load_ids'), now() - :age * interval '1 hour', 'load', jsonb_build_object('c', :client_id)) RETURNING *) INSERT INTO shadow SELECT * FROM r;
WITH u AS (UPDATE ONLY events SET payload = payload || '{"u": 1}' WHERE id = :id RETURNING id, payload) UPDATE shadow s SET payload = u.payload FROM u WHERE s.id = u.id;
WITH d AS (DELETE FROM ONLY events WHERE id = :id + 7 AND kind = 'kind-3' RETURNING id) DELETE FROM shadow s USING d WHERE s.id = d.id;
END;
`;

function bridgeErrors(bridge: BridgeProcess): string {
  return bridge
    .output()
    .split("\n")
    .filter((line) => /error|warn/i.test(line))
    .slice(-5)
    .join("\n");
}

/** Peak resident memory of a process so far (Linux VmHWM), in MiB. */
function peakRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  return Math.round(kib / 1024);
}

describe.skipIf(!serverTool("pgbench", "the load test", "any-server"))(
  "offloads under a write workload, then many concurrent cold scans",
  () => {
    let db: TestDatabase;
    let bridge: BridgeProcess;
    let cleanupStore: () => Promise<void>;
    let scratch: string;

    beforeAll(async () => {
      db = await createTestDatabase("load");
      const store = await testStoreConfig("s3");
      cleanupStore = store.cleanup;
      if (store.config.kind !== "s3") throw new Error("unreachable");
      scratch = await mkdtemp(join(tmpdir(), "pgo-load-"));
      await db.pool.query(`
      CREATE TABLE events (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, kind text NOT NULL,
                           payload jsonb);
      INSERT INTO events
        SELECT i, now() - (${ROWS} - i) * interval '172 seconds', 'kind-' || (i % 13),
               jsonb_build_object('n', i, 'tag', md5(i::text))
          FROM generate_series(1, ${ROWS}) i;
      CREATE TABLE shadow AS SELECT * FROM events;
      ALTER TABLE shadow ADD PRIMARY KEY (id);
      CREATE SEQUENCE load_ids START ${ROWS + 1};
      ANALYZE events;
      SELECT offload.define_policy('cold_30d', time_column => 'created_at', older_than => '30 days');
      SELECT offload.attach_policy('events', 'cold_30d');`);
      bridge = spawnBridge({
        PGOFFLOAD_DATABASE_URL: db.url,
        PGOFFLOAD_STORE: "s3",
        PGOFFLOAD_S3_BUCKET: store.config.bucket,
        PGOFFLOAD_S3_PREFIX: store.config.prefix ?? "load",
        PGOFFLOAD_S3_ENDPOINT: store.config.endpoint ?? "",
        PGOFFLOAD_S3_FORCE_PATH_STYLE: "true",
        PGOFFLOAD_SEGMENT_BYTES: String(2 * 1024 * 1024),
        PGOFFLOAD_CHUNK_BYTES: String(512 * 1024),
        PGOFFLOAD_SCHEDULE_MS: "0",
        PGOFFLOAD_POLL_MS: "200",
        PGOFFLOAD_RETRY_BASE_MS: "100",
        PGOFFLOAD_MAX_ATTEMPTS: "100",
        PGOFFLOAD_COMMIT_LOCK_TIMEOUT_MS: "500",
      });
    });

    afterAll(async () => {
      await bridge?.kill("SIGTERM");
      await db?.drop();
      await cleanupStore?.();
      await rm(scratch, { recursive: true, force: true });
    });

    // A correctness test: through the postgres_fdw reader (PGOFFLOAD_TEST_READER) its offloads and
    // full scans take longer than the suite's 60 s default.
    it(
      "loses and doubles nothing, and the bridge's memory stays bounded",
      { timeout: 180_000 },
      async () => {
        const script = join(scratch, "workload.sql");
        await writeFile(script, WORKLOAD);
        const { host, port, user } = inject("postgres");
        const database = new URL(db.url).pathname.slice(1);
        const workload = run(
          serverTool("pgbench", undefined, "any-server")!,
          [
            "-n",
            "-h",
            host,
            "-p",
            String(port),
            "-U",
            user,
            "-f",
            script,
            "-c",
            String(WORKLOAD_CLIENTS),
            "-j",
            "2",
            "-T",
            String(WORKLOAD_SECONDS),
            database,
          ],
          { maxBuffer: 16 * 1024 * 1024 },
        );
        // Offload again and again while the workload writes.
        let jobs = 0;
        let done = false;
        const offloads = (async () => {
          while (!done) {
            const { rows } = await db.pool.query("SELECT offload.run('events') AS id");
            const job = await waitForJob(db.pool, Number(rows[0].id), 120_000);
            expect(job.state, job.last_error ?? "").toBe("succeeded");
            jobs++;
          }
        })();
        const { stdout } = await workload.finally(() => (done = true));
        await offloads;
        const { rows: last } = await db.pool.query("SELECT offload.run('events') AS id");
        expect((await waitForJob(db.pool, Number(last[0].id))).state).toBe("succeeded");

        const transactions = Number(
          /number of transactions actually processed: (\d+)/.exec(stdout)?.[1],
        );
        const failed = Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? 0);
        expect(transactions).toBeGreaterThan(0);
        expect(failed).toBe(0);
        const expected = await tableDigest(db.pool, "shadow");
        expect(await tableDigest(db.pool, "events")).toBe(expected);
        expect(await duplicatedIds(db.pool, "events")).toBe(0);
        const cold = await db.pool.query(
          "SELECT count(*)::int AS segments, coalesce(sum(rows), 0)::int AS rows FROM offload.segments WHERE state = 'committed'",
        );
        expect(cold.rows[0].rows).toBeGreaterThan(ROWS / 2);

        // Many cold scans at once, each of the whole table, each checked against the shadow.
        const aggregate = "SELECT count(*) AS n, sum(hashtext(t::text)) AS h FROM events t";
        const truth = (await db.pool.query(aggregate.replace("events", "shadow"))).rows[0];
        const scans = await Promise.all(
          Array.from({ length: SCAN_CLIENTS }, async () => {
            const client = new pg.Client({ connectionString: db.url });
            await client.connect();
            try {
              return await client.query(aggregate).then(
                (r) => r.rows[0],
                (error: Error & { detail?: string }) => ({
                  error: error.message,
                  detail: error.detail,
                }),
              );
            } finally {
              await client.end();
            }
          }),
        );
        const serverLog = join(inject("postgres").dataDir, "..", "server.log");
        const curlErrors = () =>
          readFileSync(serverLog, "utf8")
            .split("\n")
            .filter((line) => line.startsWith("curl"))
            .slice(-5)
            .join("\n");
        for (const scan of scans) {
          expect(scan, `${bridgeErrors(bridge)}\n${curlErrors()}`).toEqual(truth);
        }

        const peak = peakRssMiB(bridge.child.pid!);
        const rowsChecked = Number(truth.n) * (SCAN_CLIENTS + 1);
        console.log(
          `FAULTS load: workload_txns=${transactions} failed_txns=${failed} offload_jobs=${jobs + 1} ` +
            `cold_segments=${cold.rows[0].segments} cold_rows=${cold.rows[0].rows} ` +
            `concurrent_scans=${SCAN_CLIENTS} rows_checked=${rowsChecked} bridge_peak_rss_mib=${peak}`,
        );
      },
    );
  },
);
