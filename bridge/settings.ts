/**
 * Every setting of the bridge, in one table: its environment name (the settings file's key is the
 * same name without PGOFFLOAD_, in lower case: PGOFFLOAD_CACHE_BYTES is cache_bytes), how its text
 * is read and checked, its default, and what the README's configuration reference says of it
 * (generated from this table: bridge/settings-reference.ts, `npm run docs:settings`).
 *
 * Where the values come from has one precedence: built-in defaults, then the configuration file,
 * then the environment. A name that is no setting (a typo, in the file or among the PGOFFLOAD_*
 * variables) stops the bridge, named with where it was found. bridge/config.ts turns the values
 * into a BridgeConfig.
 */
import { availableParallelism, hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { isAbsolute } from "node:path";
import { parse as parseYaml } from "yaml";
import { DEFAULT_RETRY_POLICY } from "../storage/retrying-store.ts";
import { DEFAULT_S3_CONNECT_TIMEOUT_MS, DEFAULT_S3_IDLE_TIMEOUT_MS } from "../storage/s3-store.ts";

const PREFIX = "PGOFFLOAD_";

export class ConfigError extends Error {
  constructor(
    readonly key: string,
    readonly problem: string,
  ) {
    super(`pg-offload configuration: ${key} ${problem}`);
    this.name = "ConfigError";
  }
}

type Env = NodeJS.ProcessEnv;

/** One setting: how to read it from the environment (or the merged settings), and its docs. */
export interface Setting<T> {
  /** The value from `env[name]`, its default when unset; throws ConfigError naming `name`. */
  read(env: Env, name: string): T;
  /** The default as the reference shows it. */
  shownDefault: string;
  /** What the reference says the setting does. */
  meaning: string;
  /** Masked wherever settings are shown. */
  secret?: boolean;
  /** Another variable read when this one is unset (a library's convention), named in the docs. */
  alias?: string;
}

interface Docs {
  meaning: string;
  /** The default as the reference shows it, when the value itself does not say it well. */
  shown?: string;
  secret?: boolean;
}

/** An integer >= min; unset or empty: the default. */
function integer(
  o: Docs & { default: number; min: number; unit?: "bytes" | "ms" },
): Setting<number> {
  return {
    read(env, name) {
      const raw = env[name];
      if (raw === undefined || raw === "") return o.default;
      const value = Number(raw);
      if (!Number.isInteger(value) || value < o.min) {
        throw new ConfigError(name, `must be an integer >= ${o.min}, got "${raw}"`);
      }
      return value;
    },
    shownDefault: o.shown ?? showNumber(o.default, o.unit),
    meaning: o.meaning,
    secret: o.secret,
  };
}

/** Free text; unset or empty: the default. */
function text<D extends string | undefined>(o: Docs & { default: D }): Setting<string | D> {
  return {
    read: (env, name) => env[name] || o.default,
    shownDefault: o.shown ?? (o.default === undefined ? "none" : `\`${o.default}\``),
    meaning: o.meaning,
    secret: o.secret,
  };
}

// Segment readers run in the database server's working directory: relative paths mean nothing there.
function absolutePath(o: Docs & { default: string; maxBytes?: number }): Setting<string> {
  return {
    read(env, name) {
      const path = env[name] || o.default;
      return checkedPath(name, path, o.maxBytes);
    },
    shownDefault: o.shown ?? `\`${o.default}\``,
    meaning: o.meaning,
  };
}

function checkedPath(name: string, path: string, maxBytes?: number): string {
  if (!isAbsolute(path)) throw new ConfigError(name, `must be an absolute path, got "${path}"`);
  if (maxBytes !== undefined && Buffer.byteLength(path) > maxBytes) {
    throw new ConfigError(name, `is longer than a unix socket path may be (${maxBytes} bytes)`);
  }
  return path;
}

function oneOf<const T extends string>(
  o: Docs & { allowed: readonly T[]; default: T },
): Setting<T> {
  return {
    read(env, name) {
      const value = env[name] || o.default;
      if (!o.allowed.includes(value as T)) {
        const choices = o.allowed.map((a) => `"${a}"`).join(", ");
        throw new ConfigError(name, `must be one of ${choices}, got "${value}"`);
      }
      return value as T;
    },
    shownDefault: o.shown ?? `\`${o.default}\``,
    meaning: o.meaning,
  };
}

const MIB = 1024 * 1024;
const HOUR_MS = 3_600_000;

/** 67108864 (64 MiB), 86400000 (24 h): the exact number to write, and what it amounts to. */
function showNumber(value: number, unit?: "bytes" | "ms"): string {
  if (unit === "bytes" && value >= MIB && value % MIB === 0) {
    const gib = value / (1024 * MIB);
    return `${value} (${Number.isInteger(gib) ? `${gib} GiB` : `${value / MIB} MiB`})`;
  }
  if (unit === "ms" && value >= HOUR_MS && value % HOUR_MS === 0) {
    return `${value} (${value / HOUR_MS} h)`;
  }
  return String(value);
}

export function defaultWorkerId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
}

/**
 * The table: every setting, in the order of the README's reference. Which settings make up the
 * store, the cache and the rest is bridge/config.ts's business; each value is read only where
 * config.ts needs it (an S3 setting is not read for the local store).
 */
const TABLE = {
  PGOFFLOAD_DATABASE_URL: {
    read: (env: Env, name: string): string => {
      const url = env[name] ?? env.DATABASE_URL;
      if (!url) throw new ConfigError(name, "is not set");
      return url;
    },
    shownDefault: "required",
    meaning: "the database to serve",
    secret: true,
    alias: "DATABASE_URL",
  },
  PGOFFLOAD_STORE: {
    read: (env: Env, name: string): "local" | "s3" => {
      const kind = env[name] ?? "local";
      if (kind !== "local" && kind !== "s3") {
        throw new ConfigError(name, `must be "local" or "s3", got "${kind}"`);
      }
      return kind;
    },
    shownDefault: "`local`",
    meaning: "`local` or `s3`",
  },
  PGOFFLOAD_STORE_DIR: text({
    default: "./pg-offload-store",
    meaning: "directory of the local store",
  }),
  PGOFFLOAD_S3_BUCKET: text({ default: undefined, meaning: "bucket (required for s3)" }),
  PGOFFLOAD_S3_PREFIX: text({ default: undefined, meaning: "key prefix" }),
  PGOFFLOAD_S3_ENDPOINT: text({
    default: undefined,
    shown: "AWS",
    meaning: "for MinIO, Ceph and other S3-compatible services: their URL",
  }),
  PGOFFLOAD_S3_REGION: {
    read: (env: Env, name: string): string | undefined => env[name] || env.AWS_REGION || undefined,
    shownDefault: "`AWS_REGION`, else `us-east-1`",
    meaning: "the bucket's region",
  },
  PGOFFLOAD_S3_FORCE_PATH_STYLE: {
    read: (env: Env, name: string): boolean => env[name] === "true",
    shownDefault: "`false`",
    meaning: "`true`: path-style requests, as MinIO, Ceph and most S3-compatible services need",
  },
  PGOFFLOAD_S3_CONNECT_TIMEOUT_MS: integer({
    default: DEFAULT_S3_CONNECT_TIMEOUT_MS,
    min: 1,
    unit: "ms",
    meaning:
      "an S3 connection not made within this long fails the attempt (kind `timeout`, retried)",
  }),
  PGOFFLOAD_S3_IDLE_TIMEOUT_MS: integer({
    default: DEFAULT_S3_IDLE_TIMEOUT_MS,
    min: 1,
    unit: "ms",
    meaning:
      "an S3 socket silent this long, before or during the answer, fails the attempt (kind `timeout`, retried); a slow transfer that keeps moving bytes is not cut",
  }),
  PGOFFLOAD_STORE_MAX_ATTEMPTS: integer({
    default: DEFAULT_RETRY_POLICY.maxAttempts,
    min: 1,
    meaning:
      "attempts per store call (put, get, delete, list page), the first included; 1 turns retrying off",
  }),
  PGOFFLOAD_STORE_RETRY_BASE_MS: integer({
    default: DEFAULT_RETRY_POLICY.baseDelayMs,
    min: 0,
    unit: "ms",
    meaning:
      "backoff between attempts: the n-th wait is between half and all of base × 2^(n-1), capped at `PGOFFLOAD_STORE_RETRY_MAX_MS`",
  }),
  PGOFFLOAD_STORE_RETRY_MAX_MS: integer({
    default: DEFAULT_RETRY_POLICY.maxDelayMs,
    min: 0,
    unit: "ms",
    meaning: "the longest wait between two attempts",
  }),
  PGOFFLOAD_STORE_DEADLINE_MS: integer({
    default: DEFAULT_RETRY_POLICY.deadlineMs,
    min: 1,
    unit: "ms",
    meaning:
      "no put, get or delete takes longer, attempts and waits together; an attempt still running then is aborted",
  }),
  PGOFFLOAD_READ_LISTEN: oneOf({
    allowed: ["unix", "tcp"],
    default: "unix",
    meaning:
      "`unix`: the read endpoint is a unix socket (bridge on the database host); `tcp`: a TCP port, every request carrying a secret",
  }),
  PGOFFLOAD_READ_SOCKET: absolutePath({
    default: "/tmp/pg-offload/read.sock",
    // sun_path holds 108 bytes with its terminating zero.
    maxBytes: 107,
    meaning:
      "the socket; its directory is created with mode 700 and handed to the database's OS user. Each bridge on a host needs a socket of its own; a socket left by a bridge that died is taken over",
  }),
  PGOFFLOAD_READ_HOST: text({
    default: "127.0.0.1",
    meaning: "where the read endpoint listens with `tcp`",
  }),
  PGOFFLOAD_READ_PORT: integer({
    default: 5480,
    min: 1,
    meaning: "the port the read endpoint listens on with `tcp`",
  }),
  PGOFFLOAD_READ_ADVERTISED_HOST: text({
    default: undefined,
    shown: "read host",
    meaning: "the host segment tables connect to (e.g. a container name)",
  }),
  PGOFFLOAD_READ_SECRET_FILE: absolutePath({
    default: "/tmp/pg-offload/read-secret",
    meaning:
      "`tcp` only: file holding the secret (one word, 16+ characters, mode 600); created with 32 random bytes when missing",
  }),
  PGOFFLOAD_READER_SECRET_FILE: {
    read: (env: Env, name: string): string | undefined => {
      const path = env[name];
      return path ? checkedPath(name, path) : undefined;
    },
    shownDefault: "the same",
    meaning: "`tcp` only: that file's path on the database host, when the bridge sees it elsewhere",
  },
  PGOFFLOAD_SQL_LISTEN: {
    read: (env: Env, name: string): { host: string; port: number } | undefined =>
      env[name] === "off" ? undefined : (hostPort(env, name) ?? { host: "127.0.0.1", port: 0 }),
    shownDefault: "127.0.0.1:0",
    meaning:
      "`host:port` of the SQL endpoint that postgres_fdw segment tables read through (policies with `reader => 'postgres_fdw'`); port 0 takes a free one; `off`: none",
  },
  PGOFFLOAD_SQL_ADVERTISED_HOST: text({
    default: undefined,
    shown: "SQL endpoint host",
    meaning: "the host postgres_fdw connects to (e.g. a container name)",
  }),
  PGOFFLOAD_SQL_SECRET_FILE: absolutePath({
    default: "/tmp/pg-offload/sql-secret",
    meaning:
      "file holding the secret the SQL endpoint's passwords derive from (one word, 16+ characters, mode 600; the same for every bridge of a database); created with 32 random bytes when missing",
  }),
  PGOFFLOAD_SQL_TLS_CERT_FILE: {
    read: (env: Env, name: string): string | undefined =>
      env[name] ? checkedPath(name, env[name]) : undefined,
    shownDefault: "none",
    meaning:
      "PEM certificate (chain) of the SQL endpoint; with the key, postgres_fdw connects with TLS (`sslmode=require` once every bridge of the database has one)",
  },
  PGOFFLOAD_SQL_TLS_KEY_FILE: {
    read: (env: Env, name: string): string | undefined =>
      env[name] ? checkedPath(name, env[name]) : undefined,
    shownDefault: "none",
    meaning: "PEM private key of that certificate",
  },
  PGOFFLOAD_SEGMENT_BYTES: integer({
    default: 64 * MIB,
    min: 1,
    unit: "bytes",
    meaning: "heap bytes per segment (one foreign table)",
  }),
  PGOFFLOAD_CHUNK_BYTES: integer({
    default: 8 * MIB,
    min: 1,
    unit: "bytes",
    meaning: "COPY text bytes per stored chunk (one object)",
  }),
  PGOFFLOAD_COMPRESSION_LEVEL: integer({
    default: 3,
    min: 0,
    meaning: "zstd level; 0 stores chunks uncompressed",
  }),
  PGOFFLOAD_UPLOAD_CONCURRENCY: integer({
    default: 3,
    min: 1,
    meaning:
      "chunks an offload uploads at once; the COPY waits beyond that (memory: about twice this many chunks per job)",
  }),
  PGOFFLOAD_READ_AHEAD_CHUNKS: integer({
    default: 2,
    min: 0,
    meaning:
      "chunks a cold scan fetches ahead of the one it streams; 0 fetches one at a time (memory: this plus one chunk per scan)",
  }),
  PGOFFLOAD_ENCODER_THREADS: integer({
    // Threads pay where cores are left once PostgreSQL's COPY backend and the bridge's event loop
    // have theirs; on 2 cores they cost ~15% of offload throughput (BENCHMARKS.md).
    default: Math.max(0, Math.min(4, availableParallelism() - 2)),
    min: 0,
    shown: "cores − 2, at most 4 (0 on 2 cores)",
    meaning:
      "worker threads that compress (and encrypt) chunks; 0 does it on the event loop. Measured slower on 2 cores, where PostgreSQL's COPY backend and the bridge already use both (see BENCHMARKS.md)",
  }),
  PGOFFLOAD_BACKGROUND_BYTES_PER_SEC: integer({
    default: 0,
    min: 0,
    shown: "0 (no limit)",
    meaning:
      "bytes per second (as stored: compressed) that offloads and rewrites may write to the store; the COPY slows down with them, so this also paces what they read from the database",
  }),
  PGOFFLOAD_BACKGROUND_REQUESTS_PER_SEC: integer({
    default: 0,
    min: 0,
    shown: "0 (no limit)",
    meaning:
      "store writes and deletes per second for offloads, rewrites and garbage collection (reads for queries are never limited)",
  }),
  PGOFFLOAD_CACHE_DIR: text({
    default: "./pg-offload-cache",
    meaning: "the chunk cache's directory on local disk (created mode 700)",
  }),
  PGOFFLOAD_CACHE_BYTES: integer({
    default: 1024 * MIB,
    min: 0,
    unit: "bytes",
    meaning: "bytes of chunks kept in that directory; 0: no disk cache",
  }),
  PGOFFLOAD_CACHE_MEMORY_BYTES: integer({
    default: 64 * MIB,
    min: 0,
    unit: "bytes",
    meaning: "bytes of chunks kept in memory; 0: none",
  }),
  PGOFFLOAD_ENCRYPTION_KEY_FILE: text({
    default: undefined,
    meaning:
      "file (mode 600) holding the key new chunks are encrypted with: 32 random bytes as 64 hex digits or base64; unset: chunks are stored unencrypted (see [Encryption](#encryption-of-stored-chunks))",
  }),
  PGOFFLOAD_ENCRYPTION_KEY: text({
    default: undefined,
    secret: true,
    meaning: "the same key in the environment, instead of the file (not both)",
  }),
  PGOFFLOAD_DECRYPTION_KEY_FILES: {
    read: (env: Env, name: string): string[] =>
      (env[name] ?? "")
        .split(",")
        .map((path) => path.trim())
        .filter(Boolean),
    shownDefault: "none",
    meaning: "comma-separated files of older keys, kept to read chunks written before a rotation",
  },
  PGOFFLOAD_POLL_MS: integer({
    default: 5_000,
    min: 1,
    unit: "ms",
    meaning: "poll interval (NOTIFY is only a hint)",
  }),
  PGOFFLOAD_SCHEDULE_MS: integer({
    default: HOUR_MS,
    min: 0,
    unit: "ms",
    meaning:
      "how often every attached table gets a scheduled job (also once at start-up); 0 turns the schedule off",
  }),
  PGOFFLOAD_COMMIT_LOCK_TIMEOUT_MS: integer({
    default: 5_000,
    min: 1,
    unit: "ms",
    meaning:
      "how long an offload's commit waits for running queries on the table (it needs a brief ACCESS EXCLUSIVE lock) before the job retries later",
  }),
  PGOFFLOAD_JOB_LEASE_MS: integer({
    default: 60_000,
    min: 1,
    unit: "ms",
    meaning: "a running job whose heartbeat is older is taken over",
  }),
  PGOFFLOAD_MAX_ATTEMPTS: integer({
    default: 5,
    min: 1,
    meaning:
      "a failed job is retried with jittered exponential backoff until it has used this many attempts",
  }),
  PGOFFLOAD_RETRY_BASE_MS: integer({
    default: 5_000,
    min: 0,
    unit: "ms",
    meaning:
      "backoff of a failed job: the n-th retry waits between half and all of base × 2^(n-1), at most 10 minutes (conflicts: 60 s)",
  }),
  PGOFFLOAD_MAX_CONFLICT_RETRIES: integer({
    default: 20,
    min: 0,
    meaning:
      "retries of a job that do not use an attempt: after a serialization failure, deadlock or lock timeout (waits capped at 60 s), or a takeover of a job whose bridge stopped heartbeating; past this many they count as attempts",
  }),
  PGOFFLOAD_GC_GRACE_MS: integer({
    default: 24 * HOUR_MS,
    min: 0,
    unit: "ms",
    meaning:
      "objects of retired segments and replaced epochs are kept this long, for scans planned before",
  }),
  PGOFFLOAD_SHUTDOWN_GRACE_MS: integer({
    default: 30_000,
    min: 0,
    unit: "ms",
    meaning:
      'on SIGTERM, how long scans being served may take to finish before they fail with "the bridge stopped while serving segment N"',
  }),
  PGOFFLOAD_LOG_FORMAT: oneOf({
    allowed: ["auto", "json", "text"],
    default: "auto",
    meaning:
      "`json` (one object per line, with `job`, `table`, `segment` fields), `text` (for people), `auto`: text when stderr is a terminal",
  }),
  PGOFFLOAD_METRICS_LISTEN: {
    read: hostPort,
    shownDefault: "none",
    meaning:
      "`host:port` for Prometheus metrics (`/metrics`) and a health check (`/healthz`); e.g. `127.0.0.1:9480`",
  },
  PGOFFLOAD_WORKER_ID: {
    read: (env: Env, name: string): string => env[name] || defaultWorkerId(),
    shownDefault: "host-pid-random",
    meaning: "the bridge's name in `offload.jobs.locked_by` and in logs",
  },
} satisfies Record<string, Setting<unknown>>;

/** "host:port", or ":port" for every interface's port; unset: undefined. */
function hostPort(env: Env, name: string): { host: string; port: number } | undefined {
  const value = env[name];
  if (!value) return undefined;
  const match = /^(.*):(\d{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (!match || port > 65535) {
    throw new ConfigError(name, `must be host:port, e.g. 127.0.0.1:9480, got "${value}"`);
  }
  return { host: match[1] || "0.0.0.0", port };
}

export type SettingName = keyof typeof TABLE;
export type SettingValue<N extends SettingName> = ReturnType<(typeof TABLE)[N]["read"]>;

/** Every setting, by its environment name, in the reference's order. */
export const SETTINGS: ReadonlyMap<string, Setting<unknown>> = new Map(Object.entries(TABLE));

/** The setting's value from `env` (environment names; unset: the default), checked. */
export function readSetting<N extends SettingName>(env: Env, name: N): SettingValue<N> {
  return (TABLE[name] as Setting<SettingValue<N>>).read(env, name);
}

/** Variables that are not settings but are allowed: where the file is, and test hooks. */
const OTHER_VARIABLES = new Set([
  "PGOFFLOAD_CONFIG",
  "PGOFFLOAD_FAILPOINT",
  "PGOFFLOAD_FAILPOINT_RESUME",
  "PGOFFLOAD_TEST_LOG",
  "PGOFFLOAD_TEST_READER",
]);

export type SettingSource = "file" | "environment";

export interface Settings {
  /** Every setting given, by environment name, as text. */
  values: Record<string, string>;
  /** Where each given setting came from. */
  sources: Map<string, SettingSource>;
  file?: string;
}

/** The file's name for a setting: PGOFFLOAD_CACHE_BYTES is cache_bytes. */
export function fileKey(envName: string): string {
  return envName.slice(PREFIX.length).toLowerCase();
}

/** Reads the file (when there is one) and the environment, the environment winning. */
export function readSettings(env: NodeJS.ProcessEnv, file: string | undefined): Settings {
  const values: Record<string, string> = {};
  const sources = new Map<string, SettingSource>();
  if (file) {
    for (const [name, value] of Object.entries(readSettingsFile(file))) {
      values[name] = value;
      sources.set(name, "file");
    }
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(PREFIX) || value === undefined || OTHER_VARIABLES.has(name)) continue;
    if (!SETTINGS.has(name)) throw unknownSetting(name, "in the environment");
    values[name] = value;
    sources.set(name, "environment");
  }
  return { values, sources, file };
}

function readSettingsFile(file: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError(file, `cannot be read: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    throw new ConfigError(file, `is not valid YAML: ${(error as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ConfigError(file, "must hold `setting: value` lines (a YAML mapping)");
  }
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) {
    const name = PREFIX + key.toUpperCase();
    if (key !== key.toLowerCase() || !SETTINGS.has(name)) {
      throw unknownSetting(key, `in ${file}`, fileKey);
    }
    if (value === null || typeof value === "object") {
      throw new ConfigError(`${key} (${file})`, "must be a single value (text, number or boolean)");
    }
    values[name] = String(value);
  }
  return values;
}

function unknownSetting(
  name: string,
  where: string,
  spell: (envName: string) => string = (n) => n,
): ConfigError {
  const near = closest(name, [...SETTINGS.keys()].map(spell));
  return new ConfigError(
    name,
    `${where} is not a pg-offload setting${near ? ` (did you mean ${near}?)` : ""}`,
  );
}

/** The known name nearest by edit distance, when it is near enough to be a typo. */
function closest(name: string, known: string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (!best || distance < best.distance) best = { name: candidate, distance };
  }
  return best && best.distance <= 3 ? best.name : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length]!;
}
