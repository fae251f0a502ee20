import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { privateSocketPath } from "./bridge-harness.ts";
import { waitUntil } from "./wait.ts";

const CLI = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));
/** The installed command, `pg-offload`, as an operator or a container runs it. */
const BIN = fileURLToPath(new URL("../../bin/pg-offload.js", import.meta.url));

export interface BridgeProcess {
  child: ChildProcess;
  /** Resolves with the exit code, or the signal that ended it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
  /** Resolves once the bridge has logged that it started; rejects if it exits first. */
  started(): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Runs `pg-offload bridge` as a separate process, so a test can SIGKILL it. Each gets a read socket
 * of its own unless `env` names one, and no chunk cache unless `env` asks for one. `via: "bin"`
 * runs it through bin/pg-offload.js, as `pg-offload bridge` runs for an operator.
 */
export function spawnBridge(
  env: Record<string, string>,
  options: { via?: "cli" | "bin"; root?: string } = {},
): BridgeProcess {
  return spawnPgOffload(["bridge"], env, options);
}

/**
 * Runs any `pg-offload` command (say `gc`) as a separate process, as spawnBridge does the bridge.
 * `root` runs the bin/pg-offload.js of another checkout (an older release, for upgrade tests).
 */
export function spawnPgOffload(
  args: string[],
  env: Record<string, string>,
  options: { via?: "cli" | "bin"; root?: string } = {},
): BridgeProcess {
  const bin = options.root ? join(options.root, "bin", "pg-offload.js") : BIN;
  const command =
    options.via === "bin" || options.root ? [bin, ...args] : ["--import", "tsx", CLI, ...args];
  // An older release knows no PGOFFLOAD_TEST_READER and refuses variables it does not know.
  const inherited = options.root ? withoutTestHooks(process.env) : process.env;
  const child = spawn(process.execPath, command, {
    env: {
      ...inherited,
      PGOFFLOAD_READ_SOCKET: privateSocketPath(),
      // No chunk cache unless asked for: every read reaches the store (see testBridgeConfig).
      PGOFFLOAD_CACHE_MEMORY_BYTES: "0",
      PGOFFLOAD_CACHE_BYTES: "0",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (d) => (output += d));
  child.stderr?.on("data", (d) => (output += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    // "close", not "exit": by then all its output has been read, so output() is complete.
    child.once("close", (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    exited,
    output: () => output,
    async started() {
      await waitUntil(
        async () => {
          if (child.exitCode !== null || child.signalCode !== null) {
            throw new Error(`bridge exited before it started:\n${output}`);
          }
          return output.includes("bridge started");
        },
        { context: () => output },
      );
    },
    async kill(signal = "SIGKILL") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      // A graceful stop that hangs is a bug the test should see, but must not leave a process.
      const forced = setTimeout(() => child.kill("SIGKILL"), 10_000);
      const result = await exited;
      clearTimeout(forced);
      if (signal !== "SIGKILL" && result.signal === "SIGKILL") {
        throw new Error(`bridge did not stop on ${signal} within 10 s:\n${output}`);
      }
    },
  };
}

/**
 * The environment of a quick child bridge on a local store: small segments and chunks (many
 * steps to stop at), fast polling and short leases (a dead bridge's job is taken over quickly),
 * no schedule (jobs run when a test asks).
 */
export function quickBridgeEnv(databaseUrl: string, storeDir: string): Record<string, string> {
  return {
    PGOFFLOAD_DATABASE_URL: databaseUrl,
    PGOFFLOAD_STORE: "local",
    PGOFFLOAD_STORE_DIR: storeDir,
    PGOFFLOAD_SEGMENT_BYTES: String(384 * 1024),
    PGOFFLOAD_CHUNK_BYTES: String(48 * 1024),
    PGOFFLOAD_POLL_MS: "200",
    PGOFFLOAD_SCHEDULE_MS: "0",
    PGOFFLOAD_JOB_LEASE_MS: "1500",
    PGOFFLOAD_RETRY_BASE_MS: "100",
    PGOFFLOAD_MAX_ATTEMPTS: "20",
    PGOFFLOAD_SHUTDOWN_GRACE_MS: "2000",
  };
}

function withoutTestHooks(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const rest = { ...env };
  delete rest.PGOFFLOAD_TEST_READER;
  return rest;
}
