import type pg from "pg";
import { enqueueScheduledJobs } from "./policy-plan.ts";
import { ChunkCache } from "../storage/chunk-cache.ts";
import { chunkEncoder } from "../storage/chunk-encoder.ts";
import { loadKeyring } from "../storage/chunk-keys.ts";
import { openStore } from "../storage/open-store.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import { ObservedStore } from "../storage/observed-store.ts";
import { rateLimited } from "../storage/rate-limited-store.ts";
import { BridgeMetrics } from "./metrics.ts";
import { MetricsEndpoint } from "./metrics-endpoint.ts";
import type { BridgeConfig } from "./config.ts";
import { createPool } from "./db.ts";
import { collectGarbage } from "./garbage-collector.ts";
import { toError } from "./errors.ts";
import { JobListener } from "./job-listener.ts";
import { JobQueue } from "./job-queue.ts";
import { JobWorker } from "./job-worker.ts";
import { createLogger, defaultLogFormat, type Logger } from "./log.ts";
import { openReadEndpoint } from "./read-endpoint-setup.ts";
import { ReadEndpointRegistry } from "./read-endpoints.ts";
import { describeTarget, type ReaderTarget } from "./reader-program.ts";
import { installSchema } from "./schema-installer.ts";
import { query } from "./sql-files.ts";

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
 * tables at it, then listens for and runs jobs, and queues scheduled ones.
 */
export async function startBridge(
  config: BridgeConfig,
  options: { store?: ObjectStore; log?: Logger } = {},
): Promise<RunningBridge> {
  const log = options.log ?? bridgeLogger(config);
  // Before anything else: a bad key should stop the bridge before it touches the database.
  const keys = await loadKeyring(config.encryptionKeys);
  const db = createPool(config.databaseUrl, log);
  const metrics = new BridgeMetrics(db);
  // A store given by the caller (tests wrap one in a FaultyStore) is used as it is, retries or not.
  const store = new ObservedStore(
    options.store ??
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
  const cleanups: Array<() => Promise<void>> = [() => db.end()];
  const stop = async () => {
    const failures: unknown[] = [];
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup().catch((error) => failures.push(error));
    }
    if (failures.length) throw new AggregateError(failures, "pg-offload: bridge stop failed");
  };
  try {
    const client = await db.connect();
    try {
      await installSchema(client);
    } finally {
      client.release();
    }
    const installationId: string = (await db.query(query("installation-id"))).rows[0].id;

    const reads = await openReadEndpoint(config, db, store, keys, cache, log, metrics.scans);
    cleanups.push(() => reads.endpoint.close(config.shutdownGraceMs));
    const endpoint = reads.target;
    const readers = new ReadEndpointRegistry(db, endpoint, config.workerId, config.jobLeaseMs, log);
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

    const encoder = chunkEncoder(config.encoderThreads);
    cleanups.push(() => encoder.close());
    const queue = new JobQueue(db, config.workerId, config.jobLeaseMs, config);
    const worker = new JobWorker(
      {
        db,
        store: backgroundStore,
        installationId,
        readers,
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
      },
      queue,
      config,
      log,
    );
    cleanups.push(() => worker.stop());
    const listener = new JobListener(config.databaseUrl, () => worker.wake(), log);
    cleanups.push(() => listener.stop());
    const gcOptions = { graceMs: config.gcGraceMs, leaseMs: config.jobLeaseMs, dryRun: false };
    const runSchedule = async () => {
      await enqueueScheduledJobs(db, config.scheduleIntervalMs).then(
        (queued) => queued > 0 && worker.wake(),
        (error) => log.warn("scheduling failed", { error: toError(error) }),
      );
      await collectGarbage(db, backgroundStore, installationId, gcOptions).then(
        (report) =>
          report.deleted > 0 && log.info("garbage collected", { objects: report.deleted }),
        (error) => log.warn("garbage collection failed", { error: toError(error) }),
      );
    };
    if (config.scheduleIntervalMs > 0) {
      void runSchedule();
      const schedule = setInterval(runSchedule, config.scheduleIntervalMs);
      cleanups.push(async () => clearInterval(schedule));
    }
    let metricsAddress: string | undefined;
    if (config.metricsListen) {
      const endpoint = new MetricsEndpoint(metrics, db, log);
      const { address, port } = await endpoint.listen(
        config.metricsListen.host,
        config.metricsListen.port,
      );
      cleanups.push(() => endpoint.close());
      metricsAddress = `http://${address}:${port}`;
    }
    log.info("bridge started", {
      metrics: metricsAddress ? `${metricsAddress}/metrics` : "off",
      endpoint: describeTarget(endpoint),
      store: store.description,
      encryptionKey: keys.current?.idHex ?? "none",
      cache: describeCache(config),
    });
    return {
      endpoint,
      db,
      store,
      cache,
      metrics,
      metricsUrl: metricsAddress,
      wake: () => worker.wake(),
      stop,
      failScansNow: () => reads.endpoint.failScansNow(),
    };
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
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
  const { rows } = await db.query(query("adopt-segment-tables"));
  const { resynced, estimated } = rows[0];
  if (Number(resynced) || Number(estimated)) {
    log.info("segment tables adopted", {
      resynced: Number(resynced),
      estimated: Number(estimated),
    });
  }
}
