/**
 * Where the bridge's settings come from, with one precedence: built-in defaults, then the
 * configuration file, then the environment. Every setting has one name in both places: the file's
 * `cache_bytes` is the environment's PGOFFLOAD_CACHE_BYTES. A name that is no setting (a typo, in
 * the file or among the PGOFFLOAD_* variables) stops the bridge, named with where it was found.
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { ConfigError } from "./config.ts";

const PREFIX = "PGOFFLOAD_";

/** Every setting, by its environment name; `secret` ones are masked wherever they are shown. */
export const SETTINGS: ReadonlyMap<string, { secret?: boolean }> = new Map([
  ["PGOFFLOAD_DATABASE_URL", { secret: true }],
  ["PGOFFLOAD_STORE", {}],
  ["PGOFFLOAD_STORE_DIR", {}],
  ["PGOFFLOAD_S3_BUCKET", {}],
  ["PGOFFLOAD_S3_PREFIX", {}],
  ["PGOFFLOAD_S3_REGION", {}],
  ["PGOFFLOAD_S3_ENDPOINT", {}],
  ["PGOFFLOAD_S3_FORCE_PATH_STYLE", {}],
  ["PGOFFLOAD_S3_CONNECT_TIMEOUT_MS", {}],
  ["PGOFFLOAD_S3_IDLE_TIMEOUT_MS", {}],
  ["PGOFFLOAD_STORE_MAX_ATTEMPTS", {}],
  ["PGOFFLOAD_STORE_RETRY_BASE_MS", {}],
  ["PGOFFLOAD_STORE_RETRY_MAX_MS", {}],
  ["PGOFFLOAD_STORE_DEADLINE_MS", {}],
  ["PGOFFLOAD_READ_LISTEN", {}],
  ["PGOFFLOAD_READ_SOCKET", {}],
  ["PGOFFLOAD_READ_HOST", {}],
  ["PGOFFLOAD_READ_PORT", {}],
  ["PGOFFLOAD_READ_ADVERTISED_HOST", {}],
  ["PGOFFLOAD_READ_SECRET_FILE", {}],
  ["PGOFFLOAD_READER_SECRET_FILE", {}],
  ["PGOFFLOAD_SEGMENT_BYTES", {}],
  ["PGOFFLOAD_CHUNK_BYTES", {}],
  ["PGOFFLOAD_UPLOAD_CONCURRENCY", {}],
  ["PGOFFLOAD_READ_AHEAD_CHUNKS", {}],
  ["PGOFFLOAD_COMPRESSION_LEVEL", {}],
  ["PGOFFLOAD_ENCODER_THREADS", {}],
  ["PGOFFLOAD_BACKGROUND_BYTES_PER_SEC", {}],
  ["PGOFFLOAD_BACKGROUND_REQUESTS_PER_SEC", {}],
  ["PGOFFLOAD_CACHE_DIR", {}],
  ["PGOFFLOAD_CACHE_BYTES", {}],
  ["PGOFFLOAD_CACHE_MEMORY_BYTES", {}],
  ["PGOFFLOAD_ENCRYPTION_KEY_FILE", {}],
  ["PGOFFLOAD_ENCRYPTION_KEY", { secret: true }],
  ["PGOFFLOAD_DECRYPTION_KEY_FILES", {}],
  ["PGOFFLOAD_COMMIT_LOCK_TIMEOUT_MS", {}],
  ["PGOFFLOAD_POLL_MS", {}],
  ["PGOFFLOAD_SCHEDULE_MS", {}],
  ["PGOFFLOAD_JOB_LEASE_MS", {}],
  ["PGOFFLOAD_MAX_ATTEMPTS", {}],
  ["PGOFFLOAD_MAX_CONFLICT_RETRIES", {}],
  ["PGOFFLOAD_RETRY_BASE_MS", {}],
  ["PGOFFLOAD_GC_GRACE_MS", {}],
  ["PGOFFLOAD_WORKER_ID", {}],
  ["PGOFFLOAD_SHUTDOWN_GRACE_MS", {}],
  ["PGOFFLOAD_LOG_FORMAT", {}],
  ["PGOFFLOAD_METRICS_LISTEN", {}],
]);

/** Variables that are not settings but are allowed: where the file is, and test hooks. */
const OTHER_VARIABLES = new Set([
  "PGOFFLOAD_CONFIG",
  "PGOFFLOAD_FAILPOINT",
  "PGOFFLOAD_FAILPOINT_RESUME",
  "PGOFFLOAD_TEST_LOG",
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
