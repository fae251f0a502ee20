import type pg from "pg";
import { enqueueScheduledJobs } from "./policy-plan.ts";
import { ChunkCache } from "../storage/chunk-cache.ts";
import { chunkEncoder } from "../storage/chunk-encoder.ts";
import { loadKeyring, type ChunkKeyring } from "../storage/chunk-keys.ts";
import { openStore } from "../storage/open-store.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import { ObservedStore } from "../storage/observed-store.ts";
import { rateLimited } from "../storage/rate-limited-store.ts";
import { BridgeMetrics } from "./metrics.ts";
import { MetricsEndpoint } from "./metrics-endpoint.ts";
import type { BridgeConfig } from "./config.ts";
import { adoptRestoredSegments, currentInstallation } from "./catalog-calls.ts";
import { createPool } from "./db.ts";
import { collectGarbage } from "./garbage-collector.ts";
import { toError } from "./errors.ts";
import type { JobContext } from "./job-context.ts";
import { JobListener } from "./job-listener.ts";
import { JobQueue } from "./job-queue.ts";
import { JobWorker } from "./job-worker.ts";
import { createLogger, defaultLogFormat, type Logger } from "./log.ts";
import type { ReadEndpoint } from "./read-endpoint.ts";
import { openReadEndpoint } from "./read-endpoint-setup.ts";
import { ReadEndpointRegistry } from "./read-endpoints.ts";
import { describeTarget, type ReaderTarget } from "./reader-program.ts";
import { installSchema } from "./schema-installer.ts";
import { ChunkFetcher } from "./chunk-fetcher.ts";
import { RemoteReaderSetup } from "./remote-reader/remote-reader-setup.ts";
import { openSqlEndpoint, type OpenSqlEndpoint } from "./remote-reader/sql-endpoint-setup.ts";

export interface RunningBridge {
  endpoint: ReaderTarget;
  db: pg.Pool;
  store: ObjectStore;
  cache: ChunkCache;
  metrics: BridgeMetrics;
  /** Where /metrics and /healthz are served, when PGOFFLOAD_METRICS_LISTEN is set. */
  metricsUrl?: string;
  /** Wakes the worker now, as a NOTIFY would. */
  wake(): void;
  /** Safe to call twice. */
  stop(): Promise<void>;
  /**
   * For a forced stop (a second signal), before the process exits: fails the scans being served,
   * each with the message that the bridge stopped. Nothing else is stopped.
   */
  failScansNow(): Promise<void>;
}

/**
 * Starts a bridge: installs or upgrades the schema, opens the read endpoint, points segment
 * tables at it, then listens for and runs jobs, and queues scheduled ones. Each step registers how
 * to undo it; a step that fails undoes those before it.
 */
export async function startBridge(
  config: BridgeConfig,
  options: { store?: ObjectStore; log?: Logger } = {},
): Promise<RunningBridge> {
  const log = options.log ?? bridgeLogger(config);
  // Before anything else: a bad key should stop the bridge before it touches the database.
  const keys = await loadKeyring(config.encryptionKeys);
  const cleanups = new Cleanups();
  try {
    const parts = await openStoreAndCache(config, keys, options.store, log, cleanups);
    const installationId = await installSchemaAndIdentify(parts.db);
    const reads = await startReadEndpoint(config, parts, log, cleanups);
    const worker = startJobLoop(config, parts, installationId, reads, log, cleanups);
    startSchedule(config, parts, installationId, worker, log, cleanups);
    const metricsUrl = await startMetricsEndpoint(config, parts, log, cleanups);
    log.info("bridge started", {
      metrics: metricsUrl ? `${metricsUrl}/metrics` : "off",
      endpoint: describeTarget(reads.target),
      store: parts.store.description,
      encryptionKey: keys.current?.idHex ?? "none",
      cache: describeCache(config),
    });
    return {
      endpoint: reads.target,
      db: parts.db,
      store: parts.store,
      cache: parts.cache,
      metrics: parts.metrics,
      metricsUrl,
      wake: () => worker.wake(),
      stop: () => cleanups.run(),
      failScansNow: async () => {
        reads.sql?.endpoint.failSessionsNow();
        await reads.endpoint?.failScansNow();
      },
    };
  } catch (error) {
    // The start's own error is the one to report; a failure to undo part of it is logged.
    await cleanups.run().catch((stopError) => {
      log.warn("could not undo a failed start", { error: toError(stopError) });
    });
    throw error;
  }
}

/** What the bridge has started, undone in reverse order; run() is safe to call twice. */
class Cleanups {
  private readonly steps: Array<() => Promise<void>> = [];

  push(step: () => Promise<void>): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    const failures: unknown[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      await step().catch((error) => failures.push(error));
    }
    if (failures.length) throw new AggregateError(failures, "pg-offload: bridge stop failed");
  }
}

/** The keys, database pool, metrics, stores and cache every later step shares. */
interface BridgeParts {
  keys: ChunkKeyring;
  db: pg.Pool;
  metrics: BridgeMetrics;
  /** The store as queries read it. */
  store: ObjectStore;
  /** The same store at the pace the operator allows background work (offloads, rewrites, gc). */
  backgroundStore: ObjectStore;
  cache: ChunkCache;
}

async function openStoreAndCache(
  config: BridgeConfig,
  keys: ChunkKeyring,
  givenStore: ObjectStore | undefined,
  log: Logger,
  cleanups: Cleanups,
): Promise<BridgeParts> {
  const db = createPool(config.databaseUrl, log);
  cleanups.push(() => db.end());
  const metrics = new BridgeMetrics(db);
  // A store given by the caller (tests wrap one in a FaultyStore) is used as it is, retries or not.
  const store = new ObservedStore(
    givenStore ??
      openStore(config.store, {
        onRetry: ({ op, key, attempt, delayMs, error }) => {
          metrics.store.retried(op);
          log.warn("store call failed; retrying", { op, key, attempt, delayMs, error });
        },
      }),
    metrics.store,
  );
  const cache = await ChunkCache.open({
    ...config.cache,
    onError: (problem, error) => log.warn(problem, { error: toError(error) }),
    observer: metrics.cache,
  });
  // Queries wait for reads; background writes and deletes go at the pace the operator allows.
  const backgroundStore = rateLimited(store, config.backgroundLimits);
  return { keys, db, metrics, store, backgroundStore, cache };
}

/** Installs or upgrades the schema; returns the installation's id (the prefix of its keys). */
async function installSchemaAndIdentify(db: pg.Pool): Promise<string> {
  const client = await db.connect();
  try {
    await installSchema(client);
  } finally {
    client.release();
  }
  return currentInstallation(db);
}

interface ReadSide {
  /** The file reader's endpoint; none in a database without file_fdw. */
  endpoint?: ReadEndpoint;
  /** Where segment readers reach the endpoint. */
  target: ReaderTarget;
  /** This bridge's record among the database's read endpoints. */
  readers: ReadEndpointRegistry;
  /** Sets up tables read through postgres_fdw (through this bridge's SQL endpoint, if any). */
  remoteReaders: RemoteReaderSetup;
  /** The SQL endpoint postgres_fdw reads through, unless it is off. */
  sql?: OpenSqlEndpoint;
}

/**
 * Opens the read endpoint, records it among the database's read endpoints (renewed as often as a
 * job's heartbeat) and adopts segment tables restored from a dump.
 */
async function startReadEndpoint(
  config: BridgeConfig,
  { keys, db, store, cache, metrics }: BridgeParts,
  log: Logger,
  cleanups: Cleanups,
): Promise<ReadSide> {
  const reads = await openReadEndpoint(config, db, store, keys, cache, log, metrics.scans);
  const fileEndpoint = reads.endpoint;
  if (fileEndpoint) cleanups.push(() => fileEndpoint.close(config.shutdownGraceMs));
  const chunks = new ChunkFetcher(store, cache, keys, log);
  // The postgres_fdw reader's scans count as the file reader's do (bytes: the chunks read).
  const sql = await openSqlEndpoint(config, db, chunks, log, (scan) =>
    metrics.scans.served(scan.outcome, scan.seconds, scan.bytesFetched),
  );
  if (sql) cleanups.push(() => sql.endpoint.close(config.shutdownGraceMs));
  const readers = new ReadEndpointRegistry(
    db,
    { ...reads.target, ...(sql && { sql: sql.address }) },
    config.workerId,
    config.jobLeaseMs,
    log,
  );
  await readers.join();
  // Renewed as often as a job's heartbeat; a row older than a lease marks a bridge that died.
  const renewal = setInterval(
    () =>
      readers.renew().catch((error) => {
        log.warn("could not renew the read endpoint's record", { error: toError(error) });
      }),
    Math.max(1, Math.floor(config.jobLeaseMs / 3)),
  );
  cleanups.push(async () => {
    clearInterval(renewal);
    await readers.leave();
  });
  await adoptSegmentTables(db, log);
  const remoteReaders = new RemoteReaderSetup(db, sql?.secret);
  await remoteReaders.refreshPasswords();
  return { ...reads, readers, remoteReaders, sql };
}

/** The worker that claims and runs jobs, woken by NOTIFY on its own connection. */
function startJobLoop(
  config: BridgeConfig,
  { keys, db, backgroundStore, cache, metrics }: BridgeParts,
  installationId: string,
  { readers, remoteReaders }: ReadSide,
  log: Logger,
  cleanups: Cleanups,
): JobWorker {
  const encoder = chunkEncoder(config.encoderThreads);
  cleanups.push(() => encoder.close());
  const queue = new JobQueue(db, config.workerId, config.jobLeaseMs, config);
  const context: Omit<JobContext, "signal"> = {
    db,
    store: backgroundStore,
    installationId,
    readers,
    remoteReaders,
    log,
    queue,
    chunkBytes: config.chunkBytes,
    uploadConcurrency: config.uploadConcurrency,
    compressionLevel: config.compressionLevel,
    encoder,
    offloads: metrics.offloads,
    encryptionKey: keys.current,
    cache,
    commitLockTimeoutMs: config.commitLockTimeoutMs,
    segmentTargetBytes: config.segmentTargetBytes,
  };
  const worker = new JobWorker(context, queue, config, log);
  cleanups.push(() => worker.stop());
  const listener = new JobListener(config.databaseUrl, () => worker.wake(), log);
  cleanups.push(() => listener.stop());
  return worker;
}

/** Every scheduleIntervalMs (and once now): queue what policies say is due, collect garbage. */
function startSchedule(
  config: BridgeConfig,
  { db, backgroundStore }: BridgeParts,
  installationId: string,
  worker: JobWorker,
  log: Logger,
  cleanups: Cleanups,
): void {
  if (config.scheduleIntervalMs <= 0) return;
  const gcOptions = { graceMs: config.gcGraceMs, leaseMs: config.jobLeaseMs, dryRun: false };
  const runSchedule = async () => {
    await enqueueScheduledJobs(db, config.scheduleIntervalMs).then(
      (queued) => queued > 0 && worker.wake(),
      (error) => log.warn("scheduling failed", { error: toError(error) }),
    );
    await collectGarbage(db, backgroundStore, installationId, gcOptions).then(
      (report) => report.deleted > 0 && log.info("garbage collected", { objects: report.deleted }),
      (error) => log.warn("garbage collection failed", { error: toError(error) }),
    );
  };
  void runSchedule();
  const schedule = setInterval(runSchedule, config.scheduleIntervalMs);
  cleanups.push(async () => clearInterval(schedule));
}

/** Serves /metrics and /healthz when configured; returns the endpoint's base URL. */
async function startMetricsEndpoint(
  config: BridgeConfig,
  { db, metrics }: BridgeParts,
  log: Logger,
  cleanups: Cleanups,
): Promise<string | undefined> {
  if (!config.metricsListen) return undefined;
  const endpoint = new MetricsEndpoint(metrics, db, log);
  const { address, port } = await endpoint.listen(
    config.metricsListen.host,
    config.metricsListen.port,
  );
  cleanups.push(() => endpoint.close());
  return `http://${address}:${port}`;
}

function describeCache({ cache }: BridgeConfig): string {
  const mib = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MiB`;
  const disk = cache.diskBytes > 0 ? `, ${mib(cache.diskBytes)} in ${cache.dir}` : "";
  return `${mib(cache.memoryBytes)} in memory${disk}`;
}

/** The bridge's logger as configured: its worker id on every line, in the configured format. */
export function bridgeLogger(config: BridgeConfig): Logger {
  const format = config.logFormat === "auto" ? defaultLogFormat() : config.logFormat;
  return createLogger({ worker: config.workerId }, undefined, format);
}

/** After a restore from a dump, the segment tables are new tables with the old names. */
async function adoptSegmentTables(db: pg.Pool, log: Logger): Promise<void> {
  const adopted = await adoptRestoredSegments(db);
  if (adopted.resynced || adopted.estimated) log.info("segment tables adopted", adopted);
}
