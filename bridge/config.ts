import { availableParallelism, hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { isAbsolute } from "node:path";
import type { KeySources } from "../storage/chunk-keys.ts";
import type { StoreConfig } from "../storage/open-store.ts";
import type { RateLimits } from "../storage/rate-limited-store.ts";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "../storage/retrying-store.ts";
import { DEFAULT_S3_CONNECT_TIMEOUT_MS, DEFAULT_S3_IDLE_TIMEOUT_MS } from "../storage/s3-store.ts";

export interface BridgeConfig {
  /** libpq-style URL of the database the bridge serves; its role must be a superuser. */
  databaseUrl: string;
  store: StoreConfig;
  /** The read endpoint listens on a unix socket (the default) or on TCP with a secret. */
  readListen: "unix" | "tcp";
  /** The socket's path; its directory is made private to the database's OS user. */
  readSocket: string;
  /** Where the read endpoint listens with readListen "tcp". */
  readHost: string;
  readPort: number;
  /** The host segment readers (curl, on the database server) connect to; defaults to readHost. */
  readAdvertisedHost?: string;
  /** TCP only: the file holding the secret every read must carry (created when missing). */
  readSecretFile: string;
  /** TCP only: the same secret's path on the database host, when that differs from the bridge's. */
  readerSecretFile?: string;
  /** About this many bytes of heap go into one segment (one foreign table). */
  segmentTargetBytes: number;
  /** About this many bytes of COPY text go into one stored chunk (one object). */
  chunkBytes: number;
  /** Chunks an offload uploads at once (memory: about twice this many chunks per job). */
  uploadConcurrency: number;
  /** Chunks a cold scan fetches ahead of the one it streams; 0 fetches one at a time. */
  readAheadChunks: number;
  compressionLevel: number;
  /** Worker threads that compress (and encrypt) chunks; 0 does it on the event loop. */
  encoderThreads: number;
  /** Caps on the store writes and deletes of offloads, rewrites and garbage collection. */
  backgroundLimits: RateLimits;
  /** The chunk cache (storage/chunk-cache.ts): a small tier in memory, a larger one on disk. */
  cache: CacheConfig;
  /** Chunk encryption keys: the one new chunks use (none: stored unencrypted) and older ones. */
  encryptionKeys: KeySources;
  /** How long an offload's commit waits for running queries on the table before retrying later. */
  commitLockTimeoutMs: number;
  /** Polling interval: a missed NOTIFY delays work by at most this long. */
  pollIntervalMs: number;
  /** How often every attached table gets a scheduled job (also once at start-up); 0: never. */
  scheduleIntervalMs: number;
  /** A running job whose heartbeat is older than this is taken over by another bridge. */
  jobLeaseMs: number;
  maxAttempts: number;
  /** Retries of a job, beyond its attempts, after conflicts with other sessions or a lost bridge. */
  maxConflictRetries: number;
  retryBaseDelayMs: number;
  /** Objects of retired segments and replaced epochs are kept this long before removal. */
  gcGraceMs: number;
  workerId: string;
  /** On stop, how long scans being served may take to finish before they are failed. */
  shutdownGraceMs: number;
  /** "auto": text on a terminal, JSON otherwise. */
  logFormat: "auto" | "json" | "text";
  /** host:port of the Prometheus metrics and health endpoint; undefined: none. */
  metricsListen?: { host: string; port: number };
}

export interface CacheConfig {
  memoryBytes: number;
  dir: string;
  diskBytes: number;
}

const DEFAULTS = {
  readListen: "unix" as const,
  readSocket: "/tmp/pg-offload/read.sock",
  readSecretFile: "/tmp/pg-offload/read-secret",
  readHost: "127.0.0.1",
  readPort: 5480,
  segmentTargetBytes: 64 * 1024 * 1024,
  chunkBytes: 8 * 1024 * 1024,
  readAheadChunks: 2,
  uploadConcurrency: 3,
  compressionLevel: 3,
  // Threads pay where cores are left once PostgreSQL's COPY backend and the bridge's event loop
  // have theirs; on 2 cores they cost ~15% of offload throughput (BENCHMARKS.md).
  encoderThreads: Math.max(0, Math.min(4, availableParallelism() - 2)),
  backgroundLimits: { bytesPerSecond: 0, requestsPerSecond: 0 },
  cache: { memoryBytes: 64 * 1024 * 1024, dir: "./pg-offload-cache", diskBytes: 1024 ** 3 },
  commitLockTimeoutMs: 5_000,
  pollIntervalMs: 5_000,
  scheduleIntervalMs: 3_600_000,
  jobLeaseMs: 60_000,
  maxAttempts: 5,
  maxConflictRetries: 20,
  retryBaseDelayMs: 5_000,
  gcGraceMs: 86_400_000,
  encryptionKeys: { previousFiles: [] } as KeySources,
  logFormat: "auto" as const,
  shutdownGraceMs: 30_000,
};

export class ConfigError extends Error {
  constructor(
    readonly key: string,
    readonly problem: string,
  ) {
    super(`pg-offload configuration: ${key} ${problem}`);
    this.name = "ConfigError";
  }
}

export function defaultWorkerId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
}

/** Reads the configuration from PGOFFLOAD_* environment variables (see the README's table). */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): BridgeConfig {
  const int = (key: string, fallback: number, min = 1): number => {
    const raw = env[key];
    if (raw === undefined || raw === "") return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min) {
      throw new ConfigError(key, `must be an integer >= ${min}, got "${raw}"`);
    }
    return value;
  };
  const databaseUrl = env.PGOFFLOAD_DATABASE_URL ?? env.DATABASE_URL;
  if (!databaseUrl) throw new ConfigError("PGOFFLOAD_DATABASE_URL", "is not set");
  return {
    databaseUrl,
    store: { ...storeFromEnv(env, int), retry: retryFromEnv(int) },
    readListen: readListenFromEnv(env),
    readSocket: absolutePath(env, "PGOFFLOAD_READ_SOCKET", DEFAULTS.readSocket),
    readSecretFile: absolutePath(env, "PGOFFLOAD_READ_SECRET_FILE", DEFAULTS.readSecretFile),
    readerSecretFile: env.PGOFFLOAD_READER_SECRET_FILE
      ? absolutePath(env, "PGOFFLOAD_READER_SECRET_FILE", "")
      : undefined,
    readHost: env.PGOFFLOAD_READ_HOST || DEFAULTS.readHost,
    readPort: int("PGOFFLOAD_READ_PORT", DEFAULTS.readPort),
    readAdvertisedHost: env.PGOFFLOAD_READ_ADVERTISED_HOST || undefined,
    segmentTargetBytes: int("PGOFFLOAD_SEGMENT_BYTES", DEFAULTS.segmentTargetBytes),
    chunkBytes: int("PGOFFLOAD_CHUNK_BYTES", DEFAULTS.chunkBytes),
    uploadConcurrency: int("PGOFFLOAD_UPLOAD_CONCURRENCY", DEFAULTS.uploadConcurrency),
    readAheadChunks: int("PGOFFLOAD_READ_AHEAD_CHUNKS", DEFAULTS.readAheadChunks, 0),
    compressionLevel: int("PGOFFLOAD_COMPRESSION_LEVEL", DEFAULTS.compressionLevel, 0),
    encoderThreads: int("PGOFFLOAD_ENCODER_THREADS", DEFAULTS.encoderThreads, 0),
    backgroundLimits: {
      bytesPerSecond: int("PGOFFLOAD_BACKGROUND_BYTES_PER_SEC", 0, 0),
      requestsPerSecond: int("PGOFFLOAD_BACKGROUND_REQUESTS_PER_SEC", 0, 0),
    },
    cache: {
      memoryBytes: int("PGOFFLOAD_CACHE_MEMORY_BYTES", DEFAULTS.cache.memoryBytes, 0),
      dir: env.PGOFFLOAD_CACHE_DIR || DEFAULTS.cache.dir,
      diskBytes: int("PGOFFLOAD_CACHE_BYTES", DEFAULTS.cache.diskBytes, 0),
    },
    encryptionKeys: encryptionKeysFromEnv(env),
    commitLockTimeoutMs: int("PGOFFLOAD_COMMIT_LOCK_TIMEOUT_MS", DEFAULTS.commitLockTimeoutMs),
    pollIntervalMs: int("PGOFFLOAD_POLL_MS", DEFAULTS.pollIntervalMs),
    scheduleIntervalMs: int("PGOFFLOAD_SCHEDULE_MS", DEFAULTS.scheduleIntervalMs, 0),
    jobLeaseMs: int("PGOFFLOAD_JOB_LEASE_MS", DEFAULTS.jobLeaseMs),
    maxAttempts: int("PGOFFLOAD_MAX_ATTEMPTS", DEFAULTS.maxAttempts),
    maxConflictRetries: int("PGOFFLOAD_MAX_CONFLICT_RETRIES", DEFAULTS.maxConflictRetries, 0),
    retryBaseDelayMs: int("PGOFFLOAD_RETRY_BASE_MS", DEFAULTS.retryBaseDelayMs, 0),
    gcGraceMs: int("PGOFFLOAD_GC_GRACE_MS", DEFAULTS.gcGraceMs, 0),
    workerId: env.PGOFFLOAD_WORKER_ID || defaultWorkerId(),
    shutdownGraceMs: int("PGOFFLOAD_SHUTDOWN_GRACE_MS", DEFAULTS.shutdownGraceMs, 0),
    logFormat: oneOf(env, "PGOFFLOAD_LOG_FORMAT", ["auto", "json", "text"], DEFAULTS.logFormat),
    metricsListen: hostPort(env, "PGOFFLOAD_METRICS_LISTEN"),
  };
}

// Segment readers run in the database server's working directory: relative paths mean nothing there.
function absolutePath(env: NodeJS.ProcessEnv, key: string, fallback: string): string {
  const path = env[key] || fallback;
  if (!isAbsolute(path)) throw new ConfigError(key, `must be an absolute path, got "${path}"`);
  // sun_path holds 108 bytes with its terminating zero.
  if (key === "PGOFFLOAD_READ_SOCKET" && Buffer.byteLength(path) > 107) {
    throw new ConfigError(key, `is longer than a unix socket path may be (107 bytes)`);
  }
  return path;
}

/** The key itself is read at start-up (storage/chunk-keys.ts); here only where it comes from. */
function encryptionKeysFromEnv(env: NodeJS.ProcessEnv): KeySources {
  const file = env.PGOFFLOAD_ENCRYPTION_KEY_FILE;
  const text = env.PGOFFLOAD_ENCRYPTION_KEY;
  if (file && text) {
    throw new ConfigError(
      "PGOFFLOAD_ENCRYPTION_KEY",
      "and PGOFFLOAD_ENCRYPTION_KEY_FILE are both set; set one",
    );
  }
  const previousFiles = (env.PGOFFLOAD_DECRYPTION_KEY_FILES ?? "")
    .split(",")
    .map((path) => path.trim())
    .filter(Boolean);
  const current = file
    ? { source: file, file }
    : text
      ? { source: "PGOFFLOAD_ENCRYPTION_KEY", text }
      : undefined;
  return { current, previousFiles };
}

function readListenFromEnv(env: NodeJS.ProcessEnv): "unix" | "tcp" {
  return oneOf(env, "PGOFFLOAD_READ_LISTEN", ["unix", "tcp"], DEFAULTS.readListen);
}

function oneOf<T extends string>(
  env: NodeJS.ProcessEnv,
  key: string,
  allowed: readonly T[],
  fallback: T,
): T {
  const value = env[key] || fallback;
  if (!allowed.includes(value as T)) {
    const choices = allowed.map((a) => `"${a}"`).join(", ");
    throw new ConfigError(key, `must be one of ${choices}, got "${value}"`);
  }
  return value as T;
}

/** "host:port", or ":port" for every interface's port; unset: undefined. */
function hostPort(env: NodeJS.ProcessEnv, key: string): { host: string; port: number } | undefined {
  const value = env[key];
  if (!value) return undefined;
  const match = /^(.*):(\d{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (!match || port > 65535) {
    throw new ConfigError(key, `must be host:port, e.g. 127.0.0.1:9480, got "${value}"`);
  }
  return { host: match[1] || "0.0.0.0", port };
}

type IntReader = (key: string, fallback: number, min?: number) => number;

/** Store calls retry within the call (storage/retrying-store.ts); these bound how hard. */
function retryFromEnv(int: IntReader): RetryPolicy {
  const d = DEFAULT_RETRY_POLICY;
  return {
    maxAttempts: int("PGOFFLOAD_STORE_MAX_ATTEMPTS", d.maxAttempts),
    baseDelayMs: int("PGOFFLOAD_STORE_RETRY_BASE_MS", d.baseDelayMs, 0),
    maxDelayMs: int("PGOFFLOAD_STORE_RETRY_MAX_MS", d.maxDelayMs, 0),
    deadlineMs: int("PGOFFLOAD_STORE_DEADLINE_MS", d.deadlineMs),
  };
}

function storeFromEnv(env: NodeJS.ProcessEnv, int: IntReader): StoreConfig {
  const kind = env.PGOFFLOAD_STORE ?? "local";
  if (kind === "local") {
    return { kind: "local", dir: env.PGOFFLOAD_STORE_DIR || "./pg-offload-store" };
  }
  if (kind === "s3") {
    const bucket = env.PGOFFLOAD_S3_BUCKET;
    if (!bucket) throw new ConfigError("PGOFFLOAD_S3_BUCKET", "is not set (PGOFFLOAD_STORE=s3)");
    return {
      kind: "s3",
      bucket,
      prefix: env.PGOFFLOAD_S3_PREFIX || undefined,
      region: env.PGOFFLOAD_S3_REGION || env.AWS_REGION || undefined,
      endpoint: env.PGOFFLOAD_S3_ENDPOINT || undefined,
      forcePathStyle: env.PGOFFLOAD_S3_FORCE_PATH_STYLE === "true",
      connectTimeoutMs: int("PGOFFLOAD_S3_CONNECT_TIMEOUT_MS", DEFAULT_S3_CONNECT_TIMEOUT_MS),
      idleTimeoutMs: int("PGOFFLOAD_S3_IDLE_TIMEOUT_MS", DEFAULT_S3_IDLE_TIMEOUT_MS),
    };
  }
  throw new ConfigError("PGOFFLOAD_STORE", `must be "local" or "s3", got "${kind}"`);
}

/** Fills in defaults for everything but the database and the store (for code that embeds a bridge). */
export function bridgeConfig(
  required: Pick<BridgeConfig, "databaseUrl" | "store">,
  overrides: Partial<BridgeConfig> = {},
): BridgeConfig {
  return { ...DEFAULTS, workerId: defaultWorkerId(), ...required, ...overrides };
}
