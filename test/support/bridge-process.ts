import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { privateSocketPath } from "./bridge-harness.ts";

const CLI = fileURLToPath(new URL("../../bridge/cli.ts", import.meta.url));

export interface BridgeProcess {
  child: ChildProcess;
  /** Resolves with the exit code, or the signal that ended it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Runs `pg-offload bridge` as a separate process, so a test can SIGKILL it. Each gets a read socket
 * of its own unless `env` names one.
 */
export function spawnBridge(env: Record<string, string>): BridgeProcess {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, "bridge"], {
    env: { ...process.env, PGOFFLOAD_READ_SOCKET: privateSocketPath(), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (d) => (output += d));
  child.stderr?.on("data", (d) => (output += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    exited,
    output: () => output,
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
