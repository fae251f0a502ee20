import { createHash } from "node:crypto";
import { inject } from "vitest";
import pg from "pg";

export const TEMPLATE_DATABASE = "pg_offload_template";

export interface TestDatabase {
  name: string;
  url: string;
  /** A pool for the test's own queries (not the bridge's). */
  pool: pg.Pool;
  drop(): Promise<void>;
}

export function serverUrl(database = "postgres"): string {
  const { host, port, user } = inject("postgres");
  return `postgres://${user}@${host}:${port}/${database}`;
}

/** Clones the template (schema installed) into a database of the test's own. */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  return createDatabase(label, TEMPLATE_DATABASE);
}

/** A database with nothing in it (not even the offload schema), e.g. to restore a dump into. */
export async function createEmptyDatabase(label: string): Promise<TestDatabase> {
  return createDatabase(label, "template0");
}

async function createDatabase(label: string, template: string): Promise<TestDatabase> {
  const name =
    "t_" +
    createHash("sha1")
      .update(label + Math.random())
      .digest("hex")
      .slice(0, 16);
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
  } finally {
    await admin.end();
  }
  const url = serverUrl(name);
  const pool = new pg.Pool({ connectionString: url, max: 8 });
  pool.on("error", () => {});
  return {
    name,
    url,
    pool,
    async drop() {
      await pool.end();
      const client = new pg.Client({ connectionString: serverUrl() });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}
