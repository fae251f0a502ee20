import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import pg from "pg";

const MIGRATIONS_DIR = new URL("../sql/migrations/", import.meta.url);
const FUNCTIONS_DIR = new URL("../sql/functions/", import.meta.url);
// Any fixed number works; it only has to be the same for every installer of this schema.
const INSTALL_LOCK_KEY = 7_318_204_551;

/**
 * The files of sql/functions/, in the order they are applied: a file may use what an earlier one
 * defines (a SQL function whose body is `RETURN ...` needs the functions it calls; a row security
 * policy needs its function).
 */
const FUNCTION_FILES = [
  "installer",
  "privileges",
  "policies",
  "jobs",
  "offload",
  "reads",
  "status",
  "lifecycle",
  "rewrites",
  "schema_changes",
  "segment_merges",
  "verify",
  "gc",
] as const;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export async function loadMigrations(): Promise<Migration[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d{3}_[\w-]+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (file) => ({
      version: Number(file.slice(0, 3)),
      name: file.replace(/\.sql$/, ""),
      sql: await readFile(new URL(file, MIGRATIONS_DIR), "utf8"),
    })),
  );
}

/** The release this installer brings (package.json's version). */
async function installerRelease(): Promise<string> {
  const manifest = await readFile(new URL("../package.json", import.meta.url), "utf8");
  return (JSON.parse(manifest) as { version: string }).version;
}

export interface InstallOptions {
  /**
   * "changed" (a bridge starting): the function definitions are applied only when they differ
   * from the ones the database holds (by digest), so a restart takes no lock on the catalog
   * tables and never waits for, or holds up, other bridges' work. "always" (`pg-offload
   * install`): applied whatever the database holds, to repair definitions changed by hand.
   */
  functions?: "changed" | "always";
}

/**
 * Installs or upgrades the offload schema, in one transaction under an advisory lock (two
 * installers racing, such as two bridges starting at once, take turns): the migrations the
 * database has not had, then every function definition of sql/functions/. Refuses a database
 * that a newer release installed, before changing anything. Returns the migrations it applied.
 */
export async function installSchema(
  client: pg.ClientBase,
  options: InstallOptions = {},
): Promise<number[]> {
  const [migrations, release, functions] = await Promise.all([
    loadMigrations(),
    installerRelease(),
    loadFunctions(),
  ]);
  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock($1)", [INSTALL_LOCK_KEY]);
    await client.query(await readFile(new URL("bootstrap.sql", MIGRATIONS_DIR), "utf8"));
    const ledger = await readLedger(client);
    const installed = await installedRelease(client);
    refuseNewerSchema(ledger, installed, migrations, release);
    const applied = await applyMissingMigrations(client, ledger, migrations);
    // A migration that creates offload.schema_release leaves it empty: read before is the same.
    const same = installed?.release === release && installed.digest === functions.digest;
    if (options.functions === "always" || applied.length > 0 || !same) {
      await applyFunctions(client, functions, release);
    }
    await client.query("COMMIT");
    return applied;
  } catch (error) {
    await client.query("ROLLBACK");
    if (error instanceof SchemaTooNewError) throw error;
    throw new SchemaInstallError(error);
  }
}

interface FunctionFiles {
  files: { area: string; sql: string }[];
  /** sha256 of every file's text, in order. */
  digest: string;
}

async function loadFunctions(): Promise<FunctionFiles> {
  const files = await Promise.all(
    FUNCTION_FILES.map(async (area) => ({
      area,
      sql: await readFile(new URL(`${area}.sql`, FUNCTIONS_DIR), "utf8"),
    })),
  );
  const hash = createHash("sha256");
  for (const { area, sql } of files) hash.update(`${area}\0${sql}\0`);
  return { files, digest: hash.digest("hex") };
}

/** The migrations the database has had, newest first. */
async function readLedger(client: pg.ClientBase): Promise<{ name: string; version: number }[]> {
  const { rows } = await client.query<{ name: string; version: number }>(
    "SELECT name, version FROM offload.migrations ORDER BY version DESC",
  );
  return rows;
}

function refuseNewerSchema(
  ledger: { name: string; version: number }[],
  installed: { release: string } | undefined,
  migrations: Migration[],
  release: string,
): void {
  const known = Math.max(...migrations.map((m) => m.version));
  const newest = ledger[0];
  if (newest && newest.version > known) {
    throw new SchemaTooNewError(
      `it has migration ${newest.name}, and this installer knows migrations up to ${known}`,
    );
  }
  if (installed && compareReleases(installed.release, release) > 0) {
    throw new SchemaTooNewError(`release ${installed.release} installed it; this is ${release}`);
  }
}

/** The release and definitions that last applied sql/functions/ (none before migration 018). */
async function installedRelease(
  client: pg.ClientBase,
): Promise<{ release: string; digest: string } | undefined> {
  const table = await client.query("SELECT to_regclass('offload.schema_release') AS t");
  if (!table.rows[0].t) return undefined;
  const { rows } = await client.query<{ release: string; digest: string }>(
    "SELECT release, functions_digest AS digest FROM offload.schema_release",
  );
  return rows[0];
}

async function applyMissingMigrations(
  client: pg.ClientBase,
  ledger: { version: number }[],
  migrations: Migration[],
): Promise<number[]> {
  const done = new Set(ledger.map((r) => r.version));
  const applied: number[] = [];
  for (const migration of migrations) {
    if (done.has(migration.version)) continue;
    await client.query("INSERT INTO offload.migrations (version, name) VALUES ($1, $2)", [
      migration.version,
      migration.name,
    ]);
    await runFile(client, migration.name, migration.sql);
    applied.push(migration.version);
  }
  return applied;
}

async function applyFunctions(
  client: pg.ClientBase,
  functions: FunctionFiles,
  release: string,
): Promise<void> {
  for (const { area, sql } of functions.files) await runFile(client, `functions/${area}`, sql);
  await client.query(
    `INSERT INTO offload.schema_release (release, functions_digest) VALUES ($1, $2)
     ON CONFLICT (one) DO UPDATE
       SET release = EXCLUDED.release, functions_digest = EXCLUDED.functions_digest,
           installed_at = now()`,
    [release, functions.digest],
  );
}

async function runFile(client: pg.ClientBase, file: string, sql: string): Promise<void> {
  try {
    await client.query(sql);
  } catch (error) {
    throw new Error(`sql/${file}.sql: ${String(error)}`, { cause: error });
  }
}

/** Orders "major.minor.patch" releases (a prerelease suffix is ignored). */
function compareReleases(a: string, b: string): number {
  const parts = (r: string) => r.split(/[-+]/)[0]!.split(".").map(Number);
  const [pa, pb] = [parts(a), parts(b)];
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The database was installed by a newer pg-offload: nothing was changed. */
export class SchemaTooNewError extends Error {
  constructor(detail: string) {
    super(
      `this database's offload schema is newer than this pg-offload (${detail}); ` +
        "nothing was changed. Upgrade pg-offload to the release that installed it, or a newer one.",
    );
    this.name = "SchemaTooNewError";
  }
}

export class SchemaInstallError extends Error {
  constructor(cause: unknown) {
    super(`installing the offload schema failed: ${String(cause)}`, { cause });
    this.name = "SchemaInstallError";
  }
}
