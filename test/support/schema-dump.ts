import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { inject } from "vitest";
import { pgDumpPath } from "./server-tools.ts";

const run = promisify(execFile);

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
