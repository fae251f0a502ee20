import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import pg from "pg";

const MIGRATIONS_DIR = fileURLToPath(new URL("../sql/", import.meta.url));
// Any fixed number works; it only has to be the same for every installer of this schema.
const INSTALL_LOCK_KEY = 7_318_204_551;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{3}_[\w-]+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (file) => ({
      version: Number(file.slice(0, 3)),
      name: file.replace(/\.sql$/, ""),
      sql: await readFile(dir + file, "utf8"),
    })),
  );
}

/**
 * Installs or upgrades the offload schema: applies, in order, each migration not yet recorded.
 * Each runs in its own transaction under an advisory lock, so two installers racing (two bridges
 * starting at once) apply every migration exactly once. Returns the versions it applied.
 */
export async function installSchema(client: pg.ClientBase): Promise<number[]> {
  const applied: number[] = [];
  for (const migration of await loadMigrations()) {
    if (await applyIfMissing(client, migration)) applied.push(migration.version);
  }
  return applied;
}

async function applyIfMissing(client: pg.ClientBase, migration: Migration): Promise<boolean> {
  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock($1)", [INSTALL_LOCK_KEY]);
    await client.query(await readFile(MIGRATIONS_DIR + "bootstrap.sql", "utf8"));
    const done = await client.query("SELECT 1 FROM offload.migrations WHERE version = $1", [
      migration.version,
    ]);
    if (done.rowCount) {
      await client.query("COMMIT");
      return false;
    }
    await client.query("INSERT INTO offload.migrations (version, name) VALUES ($1, $2)", [
      migration.version,
      migration.name,
    ]);
    await client.query(migration.sql);
    await client.query("COMMIT");
    return true;
  } catch (error) {
    await client.query("ROLLBACK");
    throw new SchemaInstallError(migration, error);
  }
}

export class SchemaInstallError extends Error {
  constructor(migration: Migration, cause: unknown) {
    super(`pg-offload: installing schema migration ${migration.name} failed: ${String(cause)}`, {
      cause,
    });
    this.name = "SchemaInstallError";
  }
}
