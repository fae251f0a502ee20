import type { KeySources } from "../storage/chunk-keys.ts";
import type { StoreConfig } from "../storage/open-store.ts";
import type { RateLimits } from "../storage/rate-limited-store.ts";
import type { RetryPolicy } from "../storage/retrying-store.ts";
import { ConfigError, readSetting, type SettingName, type SettingValue } from "./settings.ts";

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
  /** Where the SQL endpoint (postgres_fdw's reader) listens; undefined: it is off. */
  sqlListen?: { host: string; port: number };
  /** The host postgres_fdw connects to; defaults to sqlListen's host. */
  sqlAdvertisedHost?: string;
  /** The file holding the secret the SQL endpoint's passwords derive from. */
  sqlSecretFile: string;
  /** PEM files of the SQL endpoint's TLS certificate and key; undefined: no TLS. */
  sqlTls?: { certFile: string; keyFile: string };
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

/**
 * Builds the configuration from settings given by environment name (PGOFFLOAD_*, unset: the
 * defaults). Each setting is read, checked and defaulted by its entry in bridge/settings.ts; here
 * only where it goes, and the rules that join several.
 */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): BridgeConfig {
  const get = <N extends SettingName>(name: N): SettingValue<N> => readSetting(env, name);
  const databaseUrl = get("PGOFFLOAD_DATABASE_URL");
  return {
    databaseUrl,
    store: { ...storeConfig(get), retry: retryPolicy(get) },
    readListen: get("PGOFFLOAD_READ_LISTEN"),
    readSocket: get("PGOFFLOAD_READ_SOCKET"),
    readSecretFile: get("PGOFFLOAD_READ_SECRET_FILE"),
    readerSecretFile: get("PGOFFLOAD_READER_SECRET_FILE"),
    readHost: get("PGOFFLOAD_READ_HOST"),
    readPort: get("PGOFFLOAD_READ_PORT"),
    readAdvertisedHost: get("PGOFFLOAD_READ_ADVERTISED_HOST"),
    sqlListen: get("PGOFFLOAD_SQL_LISTEN"),
    sqlAdvertisedHost: get("PGOFFLOAD_SQL_ADVERTISED_HOST"),
    sqlSecretFile: get("PGOFFLOAD_SQL_SECRET_FILE"),
    sqlTls: sqlTls(get),
    segmentTargetBytes: get("PGOFFLOAD_SEGMENT_BYTES"),
    chunkBytes: get("PGOFFLOAD_CHUNK_BYTES"),
    uploadConcurrency: get("PGOFFLOAD_UPLOAD_CONCURRENCY"),
    readAheadChunks: get("PGOFFLOAD_READ_AHEAD_CHUNKS"),
    compressionLevel: get("PGOFFLOAD_COMPRESSION_LEVEL"),
    encoderThreads: get("PGOFFLOAD_ENCODER_THREADS"),
    backgroundLimits: {
      bytesPerSecond: get("PGOFFLOAD_BACKGROUND_BYTES_PER_SEC"),
      requestsPerSecond: get("PGOFFLOAD_BACKGROUND_REQUESTS_PER_SEC"),
    },
    cache: {
      memoryBytes: get("PGOFFLOAD_CACHE_MEMORY_BYTES"),
      dir: get("PGOFFLOAD_CACHE_DIR"),
      diskBytes: get("PGOFFLOAD_CACHE_BYTES"),
    },
    encryptionKeys: encryptionKeys(get),
    commitLockTimeoutMs: get("PGOFFLOAD_COMMIT_LOCK_TIMEOUT_MS"),
    pollIntervalMs: get("PGOFFLOAD_POLL_MS"),
    scheduleIntervalMs: get("PGOFFLOAD_SCHEDULE_MS"),
    jobLeaseMs: get("PGOFFLOAD_JOB_LEASE_MS"),
    maxAttempts: get("PGOFFLOAD_MAX_ATTEMPTS"),
    maxConflictRetries: get("PGOFFLOAD_MAX_CONFLICT_RETRIES"),
    retryBaseDelayMs: get("PGOFFLOAD_RETRY_BASE_MS"),
    gcGraceMs: get("PGOFFLOAD_GC_GRACE_MS"),
    workerId: get("PGOFFLOAD_WORKER_ID"),
    shutdownGraceMs: get("PGOFFLOAD_SHUTDOWN_GRACE_MS"),
    logFormat: get("PGOFFLOAD_LOG_FORMAT"),
    metricsListen: get("PGOFFLOAD_METRICS_LISTEN"),
  };
}

type Get = <N extends SettingName>(name: N) => SettingValue<N>;

/** TLS for the SQL endpoint takes both files or neither. */
function sqlTls(get: Get): BridgeConfig["sqlTls"] {
  const certFile = get("PGOFFLOAD_SQL_TLS_CERT_FILE");
  const keyFile = get("PGOFFLOAD_SQL_TLS_KEY_FILE");
  if (!certFile !== !keyFile) {
    throw new ConfigError(
      certFile ? "PGOFFLOAD_SQL_TLS_KEY_FILE" : "PGOFFLOAD_SQL_TLS_CERT_FILE",
      "is needed too: TLS takes a certificate and its key",
    );
  }
  return certFile && keyFile ? { certFile, keyFile } : undefined;
}

/** The key itself is read at start-up (storage/chunk-keys.ts); here only where it comes from. */
function encryptionKeys(get: Get): KeySources {
  const file = get("PGOFFLOAD_ENCRYPTION_KEY_FILE");
  const text = get("PGOFFLOAD_ENCRYPTION_KEY");
  if (file && text) {
    throw new ConfigError(
      "PGOFFLOAD_ENCRYPTION_KEY",
      "and PGOFFLOAD_ENCRYPTION_KEY_FILE are both set; set one",
    );
  }
  const previousFiles = get("PGOFFLOAD_DECRYPTION_KEY_FILES");
  const current = file
    ? { source: file, file }
    : text
      ? { source: "PGOFFLOAD_ENCRYPTION_KEY", text }
      : undefined;
  return { current, previousFiles };
}

/** Store calls retry within the call (storage/retrying-store.ts); these bound how hard. */
function retryPolicy(get: Get): RetryPolicy {
  return {
    maxAttempts: get("PGOFFLOAD_STORE_MAX_ATTEMPTS"),
    baseDelayMs: get("PGOFFLOAD_STORE_RETRY_BASE_MS"),
    maxDelayMs: get("PGOFFLOAD_STORE_RETRY_MAX_MS"),
    deadlineMs: get("PGOFFLOAD_STORE_DEADLINE_MS"),
  };
}

function storeConfig(get: Get): StoreConfig {
  if (get("PGOFFLOAD_STORE") === "local") {
    return { kind: "local", dir: get("PGOFFLOAD_STORE_DIR") };
  }
  const bucket = get("PGOFFLOAD_S3_BUCKET");
  if (!bucket) throw new ConfigError("PGOFFLOAD_S3_BUCKET", "is not set (PGOFFLOAD_STORE=s3)");
  return {
    kind: "s3",
    bucket,
    prefix: get("PGOFFLOAD_S3_PREFIX"),
    region: get("PGOFFLOAD_S3_REGION"),
    endpoint: get("PGOFFLOAD_S3_ENDPOINT"),
    forcePathStyle: get("PGOFFLOAD_S3_FORCE_PATH_STYLE"),
    connectTimeoutMs: get("PGOFFLOAD_S3_CONNECT_TIMEOUT_MS"),
    idleTimeoutMs: get("PGOFFLOAD_S3_IDLE_TIMEOUT_MS"),
  };
}

/**
 * Every setting at its default but the database and the store (for code that embeds a bridge),
 * then the overrides given.
 */
export function bridgeConfig(
  required: Pick<BridgeConfig, "databaseUrl" | "store">,
  overrides: Partial<BridgeConfig> = {},
): BridgeConfig {
  const defaults = configFromEnv({ PGOFFLOAD_DATABASE_URL: required.databaseUrl });
  return { ...defaults, ...required, ...overrides };
}
