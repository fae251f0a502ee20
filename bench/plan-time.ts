/**
 * Plan time against the amount of cold data: `npm run bench:plan [-- --segments 100,1000,10000]`.
 * On a throwaway PostgreSQL with the offload schema, the same 1,000 hot rows as a table never
 * offloaded, as a plain table with N segment tables and as a partitioned table with N offloaded
 * partitions (bench/sql/plan-time.sql), and the planning time of the same hot-only query on each:
 * warm (the median of repeated plans on one connection) and on a new connection (its first plan).
 * Prints each figure with its ratio to the table never offloaded.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import pg from "pg";
import { installSchema } from "../bridge/schema-installer.ts";
import { startLocalPostgres } from "../sandbox/local-postgres.ts";

const TABLES = ["plan_plain", "plan_segments", "plan_partitions", "plan_merged"] as const;
const HOT_QUERY = (table: string) =>
  `SELECT count(*), avg(reading) FROM ${table} WHERE created_at >= '2026-06-01 10:00+00'`;
const WARM_PLANS = 31;
const NEW_CONNECTIONS = 7;

const say = (line = "") => process.stdout.write(line + "\n");
const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;

async function planningMs(db: pg.Client, table: string): Promise<number> {
  const { rows } = await db.query(`EXPLAIN (SUMMARY ON) ${HOT_QUERY(table)}`);
  const line = rows.map((r) => r["QUERY PLAN"] as string).find((l) => l.startsWith("Planning"));
  return Number(/([\d.]+) ms/.exec(line ?? "")?.[1] ?? NaN);
}

async function withClient<T>(url: string, work: (db: pg.Client) => Promise<T>): Promise<T> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    return await work(db);
  } finally {
    await db.end();
  }
}

async function measure(url: string, table: string): Promise<{ warm: number; fresh: number }> {
  const warm = await withClient(url, async (db) => {
    const times = [];
    for (let i = 0; i < WARM_PLANS; i++) times.push(await planningMs(db, table));
    return median(times.slice(1));
  });
  const fresh = [];
  for (let i = 0; i < NEW_CONNECTIONS; i++) {
    fresh.push(await withClient(url, (db) => planningMs(db, table)));
  }
  return { warm, fresh: median(fresh) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      segments: { type: "string", default: "100,1000,10000" },
      // offload.segment_table_bound's default
      merged: { type: "string", default: "4" },
    },
  });
  const merged = Number(values.merged);
  const counts = values.segments.split(",").map(Number);
  const server = await startLocalPostgres({
    settings: { jit: "off", max_locks_per_transaction: "4096" },
  });
  try {
    await withClient(server.url(), (db) => installSchema(db));
    say(`plan time of a hot-only query (${HOT_QUERY("<table>")}), ms; ratio to never offloaded`);
    say(
      `segments | never offloaded warm / new conn | segment tables warm / new conn | offloaded partitions warm / new conn | merged to ${merged} (postgres_fdw) warm / new conn`,
    );
    for (const segments of counts) {
      await withClient(server.url(), async (db) => {
        await db.query(`DROP TABLE IF EXISTS ${TABLES.join(", ")} CASCADE`);
        const sql = readFileSync(new URL("./sql/plan-time.sql", import.meta.url), "utf8");
        await db.query(
          sql.replaceAll("{segments}", String(segments)).replaceAll("{merged}", String(merged)),
        );
      });
      const results = [];
      for (const table of TABLES) results.push(await measure(server.url(), table));
      const base = results[0]!;
      const cell = (r: { warm: number; fresh: number }) =>
        `${r.warm.toFixed(2)} / ${r.fresh.toFixed(2)} (${(r.warm / base.warm).toFixed(1)}x / ${(r.fresh / base.fresh).toFixed(1)}x)`;
      say(
        `${String(segments).padStart(8)} | ${base.warm.toFixed(2)} / ${base.fresh.toFixed(2)} | ` +
          `${cell(results[1]!)} | ${cell(results[2]!)} | ${cell(results[3]!)}`,
      );
    }
  } finally {
    await server.stop();
  }
}

await main();
