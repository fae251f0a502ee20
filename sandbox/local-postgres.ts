import { execFile, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** A throwaway PostgreSQL server for the demo, the tests and the benchmark. */
export interface LocalPostgres {
  host: string;
  port: number;
  user: string;
  binDir: string;
  dataDir: string;
  url(database?: string): string;
  /** Stops the server; `mode: "immediate"` is a crash stop (recovery runs at the next start). */
  restart(mode?: "fast" | "immediate"): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Finds PostgreSQL server binaries: $PG_BIN_DIR, else the newest Debian/Ubuntu
 * /usr/lib/postgresql/N/bin, else the directory of `pg_config --bindir`.
 */
export function findPostgresBinaries(): string {
  const candidates = [process.env.PG_BIN_DIR];
  const debianRoot = "/usr/lib/postgresql";
  if (existsSync(debianRoot)) {
    const versions = readdirSync(debianRoot).sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => join(debianRoot, v, "bin")));
  }
  const pgConfig = spawnSync("pg_config", ["--bindir"], { encoding: "utf8" });
  if (pgConfig.status === 0) candidates.push(pgConfig.stdout.trim());
  const found = candidates.find((dir) => dir && existsSync(join(dir, "initdb")));
  if (!found) {
    throw new Error(
      "pg-offload sandbox: no PostgreSQL server binaries found (initdb). Install the server " +
        "package with contrib (Debian: apt-get install postgresql) or set PG_BIN_DIR.",
    );
  }
  return found;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

// PostgreSQL refuses to run as root; there we run it as the `postgres` OS user.
const asRoot = process.getuid?.() === 0;
const serverUser = asRoot ? "postgres" : undefined;

async function runAsServerUser(command: string, args: string[]): Promise<void> {
  if (serverUser) await run("runuser", ["-u", serverUser, "--", command, ...args]);
  else await run(command, args);
}

async function chownToServerUser(path: string): Promise<void> {
  if (!serverUser) return;
  const { stdout } = await run("id", ["-u", serverUser]);
  const { stdout: gid } = await run("id", ["-g", serverUser]);
  await chown(path, Number(stdout.trim()), Number(gid.trim()));
}

export async function startLocalPostgres(
  options: { settings?: Record<string, string> } = {},
): Promise<LocalPostgres> {
  const binDir = findPostgresBinaries();
  const root = await mkdtemp(join(tmpdir(), "pg-offload-pg-"));
  await chownToServerUser(root);
  const dataDir = join(root, "data");
  const port = await freePort();
  await runAsServerUser(join(binDir, "initdb"), [
    "-D",
    dataDir,
    "-U",
    "postgres",
    "-A",
    "trust",
    "-E",
    "UTF8",
    "--locale=C",
    "--no-sync",
  ]);
  const settings: Record<string, string> = {
    listen_addresses: "127.0.0.1",
    port: String(port),
    unix_socket_directories: root,
    // A throwaway server: durability against OS crashes is not what these runs test.
    fsync: "off",
    full_page_writes: "off",
    max_connections: "200",
    ...options.settings,
  };
  const serverOptions = Object.entries(settings)
    .map(([key, value]) => `-c ${key}=${value}`)
    .join(" ");
  const pgCtl = (args: string[]) =>
    runAsServerUser(join(binDir, "pg_ctl"), ["-D", dataDir, "-w", ...args]);
  const start = () => pgCtl(["-l", join(root, "server.log"), "-o", serverOptions, "start"]);
  await start();
  let running = true;
  return {
    host: "127.0.0.1",
    port,
    user: "postgres",
    binDir,
    dataDir,
    url: (database = "postgres") => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async restart(mode = "fast") {
      await pgCtl(["-m", mode, "stop"]);
      await start();
    },
    async stop() {
      if (!running) return;
      running = false;
      await pgCtl(["-m", "fast", "stop"]).catch(() => pgCtl(["-m", "immediate", "stop"]));
      await rm(root, { recursive: true, force: true });
    },
  };
}
