/**
 * The benchmark: `npm run bench [-- --rows N --store local,s3 --datasets readings,lineitem
 * --workers 0,2]`. On a throwaway PostgreSQL (and s3rver for the S3 store) it builds each table,
 * then, side by side in one run: offloads it and times the same rows through COPY | zstd; times a
 * full scan cold, hot and at the parse limit (the same rows as plain COPY text read by file_fdw
 * with `cat`), and selective queries (one day, one row by id, 100 ids by a join) cold and hot;
 * and counts stored bytes and store requests.
 * Prints figures and ratios; BENCHMARKS.md records them.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { startBridge } from "../bridge/bridge.ts";
import { bridgeConfig } from "../bridge/config.ts";
import { silentLogger } from "../bridge/log.ts";
import { CountingStore } from "../storage/counting-store.ts";
import { openStore, type StoreConfig } from "../storage/open-store.ts";
import { startLocalPostgres, type LocalPostgres } from "../sandbox/local-postgres.ts";
import { startS3Server, type LocalS3 } from "../sandbox/s3-server.ts";
import { DATASETS, type Dataset } from "./datasets.ts";
import { requireCommand } from "./measure.ts";
import { printResult } from "./report.ts";
import { runOffloadBench, type BenchTarget } from "./offload-bench.ts";

const USAGE = `npm run bench -- [options]
  --rows N                 rows per table (default 2000000)
  --store local,s3         stores to run against (default both)
  --datasets readings,lineitem
  --workers 0,2            max_parallel_workers_per_gather values for the full scans
  --runs N                 timed runs per query; the best is reported (default 3)
  --explain                print the plans of the full scans
  --chunk-mib N            chunk size (default 8)
  --upload-concurrency N   chunks uploaded at once (default 3)
  --read-ahead N           chunks fetched ahead by a cold scan (default 2)
  --segment-mib N          heap bytes per segment, the policy's segment_bytes (default: the bridge's, 64)
  --segment-tables N       the postgres_fdw policy's segment_tables: segments merged beyond it (default 4)
  --level N                zstd level of the chunks and of the baseline pipeline (default 3)
  --background-mib-per-sec N  cap on the offload's store writes (default 0: none)
  --cache-mib N            the bridge's disk cache (default 1024; 0: no cache, memory tier included)
  --encoder-threads N      threads compressing chunks; 0 compresses on the event loop (default: the bridge's)
  --readers file_fdw,postgres_fdw  the readers to compare, each on its own offload of the same data (default both)
  --remote-chunk-mib N     chunk size of the postgres_fdw reader's policy, its block size (default 1)
`;

interface Options {
  rows: number;
  stores: Array<"local" | "s3">;
  datasets: Dataset[];
  workers: number[];
  runs: number;
  explain: boolean;
  readAheadChunks: number;
  chunkBytes: number;
  uploadConcurrency: number;
  segmentBytes?: number;
  segmentTables?: number;
  compressionLevel: number;
  backgroundBytesPerSecond: number;
  encoderThreads?: number;
  cacheBytes: number;
  readers: Reader[];
  remoteChunkBytes: number;
}

type Reader = "file_fdw" | "postgres_fdw";

function options(): Options {
  const { values } = parseArgs({
    options: {
      rows: { type: "string", default: "2000000" },
      store: { type: "string", default: "local,s3" },
      datasets: { type: "string", default: "readings,lineitem" },
      workers: { type: "string", default: "0,2" },
      runs: { type: "string", default: "3" },
      explain: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
      "read-ahead": { type: "string", default: "2" },
      "chunk-mib": { type: "string", default: "8" },
      "upload-concurrency": { type: "string", default: "3" },
      "segment-mib": { type: "string" },
      "segment-tables": { type: "string" },
      level: { type: "string", default: "3" },
      "background-mib-per-sec": { type: "string", default: "0" },
      "encoder-threads": { type: "string" },
      "cache-mib": { type: "string", default: "1024" },
      readers: { type: "string", default: "file_fdw,postgres_fdw" },
      "remote-chunk-mib": { type: "string", default: "1" },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const list = (text: string) => text.split(",").map((item) => item.trim());
  const stores = list(values.store);
  for (const store of stores) {
    if (store !== "local" && store !== "s3") throw new Error(`--store: unknown store "${store}"`);
  }
  const datasets = list(values.datasets).map((name) => {
    const found = DATASETS[name];
    if (!found) throw new Error(`--datasets: unknown dataset "${name}" (readings, lineitem)`);
    return found;
  });
  const readers = list(values.readers);
  for (const reader of readers) {
    if (reader !== "file_fdw" && reader !== "postgres_fdw") {
      throw new Error(`--readers: unknown reader "${reader}" (file_fdw, postgres_fdw)`);
    }
  }
  const rows = Number(values.rows);
  if (!Number.isInteger(rows) || rows < 1000) throw new Error("--rows: an integer >= 1000");
  return {
    rows,
    stores: stores as Options["stores"],
    datasets,
    workers: list(values.workers).map(Number),
    runs: Number(values.runs),
    explain: values.explain,
    readAheadChunks: Number(values["read-ahead"]),
    uploadConcurrency: Number(values["upload-concurrency"]),
    chunkBytes: mib(values["chunk-mib"]),
    segmentBytes: values["segment-mib"] === undefined ? undefined : mib(values["segment-mib"]),
    segmentTables:
      values["segment-tables"] === undefined ? undefined : Number(values["segment-tables"]),
    compressionLevel: Number(values.level),
    backgroundBytesPerSecond: mib(values["background-mib-per-sec"]),
    cacheBytes: mib(values["cache-mib"]),
    encoderThreads:
      values["encoder-threads"] === undefined ? undefined : Number(values["encoder-threads"]),
    readers: readers as Reader[],
    remoteChunkBytes: mib(values["remote-chunk-mib"]),
  };
}

const mib = (text: string) => Math.round(Number(text) * 1024 * 1024);

async function main(): Promise<void> {
  const opts = options();
  await requireCommand("zstd", "the baseline pipeline compresses with it: apt install zstd");
  // JIT off: its compile time would be noise on second-long queries. Shared buffers hold the hot
  // tables whole, so "hot" means in memory.
  const server = await startLocalPostgres({ settings: { jit: "off", shared_buffers: "2GB" } });
  const s3 = opts.stores.includes("s3")
    ? await startS3Server({ bucket: "pg-offload-bench" })
    : undefined;
  try {
    for (const dataset of opts.datasets) {
      const template = await buildTemplate(server, dataset, opts.rows);
      for (const store of opts.stores) {
        for (const reader of opts.readers) {
          const result = await benchOne(server, s3, dataset, template, { store, reader }, opts);
          printResult(result);
        }
      }
    }
  } finally {
    await s3?.stop();
    await server.stop();
  }
}

/** Builds the table and its hot copy once, as a template database each store's run clones. */
async function buildTemplate(server: LocalPostgres, dataset: Dataset, rows: number) {
  const name = `bench_${dataset.name}`;
  process.stdout.write(`building ${dataset.name}: ${rows.toLocaleString("en")} rows...\n`);
  await adminQuery(server, `CREATE DATABASE ${name}`);
  const db = new pg.Client({ connectionString: server.url(name) });
  await db.connect();
  try {
    await db.query(dataset.createSql(rows));
    await db.query(`CREATE TABLE ${dataset.name}_hot AS SELECT * FROM ${dataset.name}`);
    await db.query(`CREATE INDEX ON ${dataset.name}_hot (${dataset.timeColumn})`);
    await db.query(`ALTER TABLE ${dataset.name}_hot ADD PRIMARY KEY (${dataset.primaryKey})`);
    await db.query(`VACUUM ANALYZE`);
  } finally {
    await db.end();
  }
  return name;
}

async function adminQuery(server: LocalPostgres, sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: server.url() });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

async function benchOne(
  server: LocalPostgres,
  s3: LocalS3 | undefined,
  dataset: Dataset,
  template: string,
  { store, reader }: { store: "local" | "s3"; reader: Reader },
  opts: Options,
) {
  const database = `${template}_${store}_${reader}`;
  await adminQuery(server, `CREATE DATABASE ${database} TEMPLATE ${template}`);
  const scratch = await mkdtemp(join(tmpdir(), "pg-offload-bench-"));
  const storeConfig = benchStore(store, s3, scratch, dataset.name);
  const counting = new CountingStore(openStore(storeConfig));
  const bridge = await startBridge(
    bridgeConfig(
      { databaseUrl: server.url(database), store: storeConfig },
      {
        readSocket: join(await mkdtemp(join(tmpdir(), "pgo-bench-read-")), "read.sock"),
        pollIntervalMs: 200,
        scheduleIntervalMs: 0,
        compressionLevel: opts.compressionLevel,
        ...(opts.encoderThreads === undefined ? {} : { encoderThreads: opts.encoderThreads }),
        backgroundLimits: { bytesPerSecond: opts.backgroundBytesPerSecond, requestsPerSecond: 0 },
        readAheadChunks: opts.readAheadChunks,
        chunkBytes: opts.chunkBytes,
        uploadConcurrency: opts.uploadConcurrency,
        cache: {
          memoryBytes: opts.cacheBytes > 0 ? 64 * 1024 ** 2 : 0,
          dir: join(scratch, "cache"),
          diskBytes: opts.cacheBytes,
        },
      },
    ),
    { store: counting, log: silentLogger },
  );
  const db = new pg.Client({ connectionString: server.url(database) });
  await db.connect();
  try {
    const target: BenchTarget = {
      server,
      database,
      db,
      store: counting,
      cache: bridge.cache,
      scratch,
    };
    return await runOffloadBench(target, dataset, {
      ...opts,
      storeKind: store,
      reader,
      // The block the postgres_fdw reader skips by is a chunk: smaller ones fetch less per lookup.
      chunkBytes: reader === "postgres_fdw" ? opts.remoteChunkBytes : undefined,
    });
  } finally {
    await db.end();
    await bridge.stop();
    await adminQuery(server, `DROP DATABASE ${database}`);
    await rm(scratch, { recursive: true, force: true });
  }
}

function benchStore(
  kind: "local" | "s3",
  s3: LocalS3 | undefined,
  scratch: string,
  prefix: string,
): StoreConfig {
  if (kind === "local") return { kind, dir: join(scratch, "store") };
  if (!s3) throw new Error("unreachable: no S3 server");
  process.env.AWS_ACCESS_KEY_ID = s3.credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = s3.credentials.secretAccessKey;
  return {
    kind,
    bucket: s3.bucket,
    prefix: `${prefix}-${Date.now()}`,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    region: s3.region,
  };
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
