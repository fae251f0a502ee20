/**
 * The quick start: a throwaway PostgreSQL and a local directory store, a table of a million rows,
 * a policy, an offload, and the same queries answered before and after. Cleans up after itself.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { startBridge } from "../bridge/bridge.ts";
import { bridgeConfig } from "../bridge/config.ts";
import { silentLogger } from "../bridge/log.ts";
import { startLocalPostgres } from "../sandbox/local-postgres.ts";
import { SandboxError } from "../sandbox/sandbox-error.ts";

const file = (name: string) => readFileSync(new URL(name, import.meta.url), "utf8");
const say = (line = "") => process.stdout.write(line + "\n");
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

interface DemoQuery {
  name: string;
  sql: string;
}

function demoQueries(): DemoQuery[] {
  const day = 86_400_000;
  const iso = (msAgo: number) => new Date(Date.now() - msAgo).toISOString();
  const text = file("./demo-queries.sql")
    .replaceAll("{recent}", iso(7 * day))
    .replaceAll("{old_from}", iso(240 * day))
    .replaceAll("{old_to}", iso(210 * day));
  return text
    .split("-- name: ")
    .slice(1)
    .map((block) => {
      const [name, ...sql] = block.split("\n");
      return { name: name!.trim(), sql: sql.join("\n").trim() };
    });
}

async function timed(db: pg.Client, sql: string): Promise<{ answer: string; ms: number }> {
  let best = Infinity;
  let answer = "";
  for (let i = 0; i < 3; i++) {
    const start = performance.now();
    const { rows } = await db.query(sql);
    best = Math.min(best, performance.now() - start);
    answer = JSON.stringify(rows[0]);
  }
  return { answer, ms: best };
}

async function main(): Promise<void> {
  say("pg-offload demo: starting a throwaway PostgreSQL and a local directory store...");
  const server = await startLocalPostgres();
  const storeDir = await mkdtemp(join(tmpdir(), "pg-offload-demo-store-"));
  const readDir = await mkdtemp(join(tmpdir(), "pg-offload-demo-read-"));
  const cacheDir = await mkdtemp(join(tmpdir(), "pg-offload-demo-cache-"));
  let bridge: Awaited<ReturnType<typeof startBridge>> | undefined;
  const db = new pg.Client({ connectionString: server.url() });
  try {
    await db.connect();
    bridge = await startBridge(
      bridgeConfig(
        { databaseUrl: server.url(), store: { kind: "local", dir: storeDir } },
        {
          readSocket: join(readDir, "read.sock"),
          pollIntervalMs: 500,
          cache: { memoryBytes: 64 * 1024 ** 2, dir: cacheDir, diskBytes: 1024 ** 3 },
        },
      ),
      { log: silentLogger },
    );
    say("building a table of 1,000,000 rows over the last year...");
    await db.query(file("./demo-table.sql"));
    await db.query("VACUUM ANALYZE events");
    const heapBefore = Number(
      (await db.query("SELECT pg_total_relation_size('events') AS b")).rows[0].b,
    );
    const queries = demoQueries();
    const before = [];
    for (const q of queries) before.push(await timed(db, q.sql));

    say("attaching policy: rows older than 90 days go cold; running it now...");
    await db.query(
      "SELECT offload.define_policy('cold_after_90d', time_column => 'created_at', older_than => interval '90 days')",
    );
    await db.query("SELECT offload.attach_policy('public.events', 'cold_after_90d')");
    const started = performance.now();
    const jobId = (await db.query("SELECT offload.run('public.events') AS id")).rows[0].id;
    const job = await waitForJob(db, jobId);
    const seconds = (performance.now() - started) / 1000;
    if (job.state !== "succeeded") throw new Error(`offload job failed: ${job.last_error}`);
    say(
      `offloaded ${job.rows_done} rows in ${job.segments_done} segments in ${seconds.toFixed(1)} s`,
    );

    await db.query("VACUUM events");
    const status = (await db.query("SELECT * FROM offload.tables")).rows[0];
    say();
    say(`table size before offload (heap + indexes): ${mb(heapBefore)}`);
    say(
      `hot rows now: ~${status.hot_rows_estimate}, hot heap ${mb(Number(status.hot_bytes))} (the freed space is reused by new rows after VACUUM)`,
    );
    say(
      `cold rows: ${status.cold_rows} in ${status.cold_segments} segments; COPY text ${mb(Number(status.cold_raw_bytes))}, stored ${mb(Number(status.cold_stored_bytes))}`,
    );
    say();
    say("query answers and best-of-3 times, before -> after offload:");
    let same = true;
    for (const [i, q] of queries.entries()) {
      const after = await timed(db, q.sql);
      const b = before[i]!;
      same &&= after.answer === b.answer;
      say(`  ${q.name}`);
      say(`    before: ${b.answer}  ${b.ms.toFixed(1)} ms`);
      say(
        `    after:  ${after.answer}  ${after.ms.toFixed(1)} ms  ${after.answer === b.answer ? "(same answer)" : "(DIFFERENT ANSWER)"}`,
      );
    }
    say();
    say(same ? "every answer is the same after offload." : "SOME ANSWERS DIFFER: this is a bug.");
    if (!same) process.exitCode = 1;
  } finally {
    await db.end().catch(() => {});
    await bridge?.stop();
    await server.stop();
    await rm(storeDir, { recursive: true, force: true });
    await rm(readDir, { recursive: true, force: true });
    await rm(cacheDir, { recursive: true, force: true });
    say("cleaned up the demo server and store.");
  }
}

async function waitForJob(db: pg.Client, id: string) {
  let lastRows = -1;
  for (;;) {
    const { rows } = await db.query("SELECT * FROM offload.jobs WHERE id = $1", [id]);
    const job = rows[0];
    if (job.state === "succeeded" || job.state === "failed") return job;
    if (Number(job.rows_done) !== lastRows && job.segments_total) {
      lastRows = Number(job.rows_done);
      say(
        `  job ${id}: ${job.state}, segment ${job.segments_done}/${job.segments_total}, ${job.rows_done} rows copied`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

main().catch((error: unknown) => {
  // The server not starting is the user's machine, not a bug: a sentence says what to do.
  if (error instanceof SandboxError) console.error(`pg-offload demo: ${error.message}`);
  else console.error(error);
  process.exit(1);
});
