import { dirname, join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import type pg from "pg";
import type { ChunkCache } from "../storage/chunk-cache.ts";
import type { CountingStore } from "../storage/counting-store.ts";
import type { LocalPostgres } from "../sandbox/local-postgres.ts";
import { parseLimitSql, SELECTIVE_QUERIES, type Dataset, type SelectiveQuery } from "./datasets.ts";
import { bestOf, copyThroughZstd, timeQuery } from "./measure.ts";

export interface BenchTarget {
  server: LocalPostgres;
  database: string;
  db: pg.Client;
  store: CountingStore;
  /** The bridge's chunk cache: emptied before each run that measures reads from the store. */
  cache: ChunkCache;
  scratch: string;
}

export interface ScanFigures {
  workers: number;
  /** Every chunk read from the store (the cache emptied before each run). */
  coldMs: number;
  /** Every chunk from the bridge's cache. */
  cachedMs: number;
  hotMs: number;
  parseLimitMs: number;
  getsPerScan: number;
  sameAnswer: boolean;
}

export interface BenchResult {
  dataset: string;
  store: string;
  reader: string;
  rows: number;
  /** Table plus indexes, before offload. */
  heapTotalBytes: number;
  coldRows: number;
  /** Heap bytes of the rows the policy moves: the base of both throughput figures. */
  coldHeapBytes: number;
  /** COPY | zstd of the cold rows; and the DELETE of them a user would also run. */
  baseline: { ms: number; bytes: number; deleteMs: number };
  offload: {
    ms: number;
    puts: number;
    bytesPut: number;
    segments: number;
    storedBytes: number;
    /** How long the bridge's event loop (which also serves scans) was held up, at worst and p99. */
    loopDelayMaxMs: number;
    loopDelayP99Ms: number;
  };
  scans: ScanFigures[];
  selective: Array<{
    query: SelectiveQuery;
    coldMs: number;
    cachedMs: number;
    hotMs: number;
    segmentsScanned: number;
    bytesFetched: number;
    sameAnswer: boolean;
  }>;
}

export async function runOffloadBench(
  target: BenchTarget,
  dataset: Dataset,
  opts: {
    workers: number[];
    runs: number;
    storeKind: string;
    reader: "file_fdw" | "postgres_fdw";
    /** The policy's chunk_bytes; undefined: the bridge's. */
    chunkBytes?: number;
    compressionLevel: number;
    explain: boolean;
    segmentBytes?: number;
    /** The policy's segment_tables; undefined: the default. */
    segmentTables?: number;
  },
): Promise<BenchResult> {
  const { db } = target;
  const table = dataset.name;
  const heap = await one(
    db,
    `SELECT pg_total_relation_size('${table}') AS bytes, count(*) AS rows FROM ${table}`,
  );
  // Both readers get the same zone map: the lookup key, so point lookups can skip data.
  await db.query(
    `SELECT offload.define_policy('bench', time_column => '${dataset.timeColumn}', older_than => interval '30 days'` +
      `, zone_map_columns => '{${dataset.lookupKey}}', reader => '${opts.reader}'` +
      (opts.segmentBytes ? `, segment_bytes => ${opts.segmentBytes}` : "") +
      (opts.segmentTables ? `, segment_tables => ${opts.segmentTables}` : "") +
      (opts.chunkBytes ? `, chunk_bytes => ${opts.chunkBytes}` : "") +
      ")",
  );
  await db.query(`SELECT offload.attach_policy('${table}', 'bench')`);
  const cold = await one(
    db,
    `SELECT coalesce(sum(rows), 0) AS rows, coalesce(sum(heap_bytes), 0) AS bytes FROM offload.preview('${table}')`,
  );
  const baseline = await baselinePipeline(target, dataset, opts.compressionLevel);
  const offload = await offloadNow(target, table);
  const scans: ScanFigures[] = [];
  await db.query(parseLimitSql(table, dirname(target.server.dataDir)));
  for (const workers of opts.workers) {
    scans.push(await fullScans(target, dataset, workers, opts.runs));
    if (opts.explain) await printPlans(db, dataset, workers);
  }
  return {
    dataset: table,
    store: opts.storeKind,
    reader: opts.reader,
    rows: Number(heap.rows),
    heapTotalBytes: Number(heap.bytes),
    coldRows: Number(cold.rows),
    coldHeapBytes: Number(cold.bytes),
    baseline,
    offload,
    scans,
    selective: await selectiveQueries(target, dataset, opts.runs),
  };
}

async function one(db: pg.Client, sql: string): Promise<Record<string, string>> {
  return (await db.query(sql)).rows[0];
}

async function baselinePipeline(target: BenchTarget, dataset: Dataset, level: number) {
  const file = join(target.scratch, `${dataset.name}.copy.zst`);
  const copySql = `COPY (SELECT * FROM ONLY ${dataset.name} WHERE ${dataset.coldCondition}) TO STDOUT`;
  const psql = join(target.server.binDir, "psql");
  let bytes = 0;
  const ms = await bestOf(2, async () => {
    bytes = await copyThroughZstd(psql, target.server.url(target.database), copySql, level, file);
  });
  // On the hot copy (the same rows), rolled back: the table to offload stays as it is.
  const deleteSql = `DELETE FROM ${dataset.name}_hot WHERE ${dataset.coldCondition}`;
  await target.db.query("BEGIN");
  const deleteMs = await bestOf(1, () => target.db.query(deleteSql));
  await target.db.query("ROLLBACK");
  return { ms, bytes, deleteMs };
}

async function offloadNow(target: BenchTarget, table: string) {
  target.store.take();
  // The bridge runs in this process: its event loop is this one.
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  const started = performance.now();
  const { id } = await one(target.db, `SELECT offload.run('${table}') AS id`);
  for (;;) {
    const job = await one(target.db, `SELECT state, last_error FROM offload.jobs WHERE id = ${id}`);
    if (job.state === "succeeded") break;
    if (job.state === "failed") throw new Error(`offload of ${table} failed: ${job.last_error}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const ms = performance.now() - started;
  loop.disable();
  const counts = target.store.take();
  const stored = await one(
    target.db,
    `SELECT count(DISTINCT s.id) AS segments, sum(c.stored_bytes) AS bytes
       FROM offload.segments s JOIN offload.chunks c ON c.segment_id = s.id
      WHERE s.table_id = '${table}'::regclass AND s.state = 'committed'`,
  );
  return {
    ms,
    puts: counts.puts,
    bytesPut: counts.bytesPut,
    segments: Number(stored.segments),
    storedBytes: Number(stored.bytes),
    loopDelayMaxMs: loop.max / 1e6,
    loopDelayP99Ms: loop.percentile(99) / 1e6,
  };
}

async function fullScans(
  target: BenchTarget,
  dataset: Dataset,
  workers: number,
  runs: number,
): Promise<ScanFigures> {
  const { db } = target;
  const table = dataset.name;
  const timing = { workers, runs };
  target.store.take();
  const fromStore = { ...timing, before: () => target.cache.clear() };
  const coldMs = await timeQuery(db, dataset.query("full", table), fromStore);
  const getsPerScan = target.store.take().gets / runs;
  const cachedMs = await timeQuery(db, dataset.query("full", table), timing);
  const hotMs = await timeQuery(db, dataset.query("full", `${table}_hot`), timing);
  const parseLimitMs = await timeQuery(db, dataset.query("full", `${table}_parse`), timing);
  const sameAnswer = await sameAnswers(
    db,
    dataset.query("full", table),
    dataset.query("full", `${table}_hot`),
  );
  return { workers, coldMs, cachedMs, hotMs, parseLimitMs, getsPerScan, sameAnswer };
}

/** The plans of the cold and parse-limit full scans: whether and how the work is spread. */
async function printPlans(db: pg.Client, dataset: Dataset, workers: number): Promise<void> {
  await db.query(`SET max_parallel_workers_per_gather = ${workers}`);
  for (const table of [dataset.name, `${dataset.name}_parse`]) {
    const { rows } = await db.query(`EXPLAIN (COSTS OFF) ${dataset.query("full", table)}`);
    const plan = rows.map((row) => `    ${row["QUERY PLAN"]}`).join("\n");
    process.stdout.write(`plan of the full scan of ${table}, ${workers} workers:\n${plan}\n`);
  }
}

async function selectiveQueries(target: BenchTarget, dataset: Dataset, runs: number) {
  const results = [];
  for (const query of SELECTIVE_QUERIES)
    results.push(await selectiveQuery(target, dataset, query, runs));
  return results;
}

async function selectiveQuery(
  target: BenchTarget,
  dataset: Dataset,
  query: SelectiveQuery,
  runs: number,
) {
  const { db } = target;
  const timing = { workers: 0, runs };
  const cold = dataset.query(query, dataset.name);
  const hot = dataset.query(query, `${dataset.name}_hot`);
  target.store.take();
  const fromStore = { ...timing, before: () => target.cache.clear() };
  const coldMs = await timeQuery(db, cold, fromStore);
  const counts = target.store.take();
  const cachedMs = await timeQuery(db, cold, timing);
  const hotMs = await timeQuery(db, hot, timing);
  const scanned = new Set(counts.keysGot.map((key) => /\/s(\d+)-/.exec(key)?.[1]));
  return {
    query,
    coldMs,
    cachedMs,
    hotMs,
    segmentsScanned: scanned.size,
    bytesFetched: counts.bytesGot / runs,
    sameAnswer: await sameAnswers(db, cold, hot),
  };
}

/** Floating-point sums depend on row order; compare them to 12 significant digits. */
async function sameAnswers(db: pg.Client, a: string, b: string): Promise<boolean> {
  const answer = async (sql: string) =>
    JSON.stringify((await db.query(sql)).rows).replace(/-?\d+\.\d{6,}(e[-+]?\d+)?/g, (number) =>
      Number(number).toPrecision(12),
    );
  return (await answer(a)) === (await answer(b));
}
