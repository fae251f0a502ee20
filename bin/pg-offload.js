#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so the package needs no build step. Signals are passed on
// to it, so that `docker stop` (SIGTERM to this process, PID 1 in the container) stops the bridge
// gracefully.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../cli/main.ts", import.meta.url));
const child = spawn(process.execPath, ["--import", "tsx", cli, ...process.argv.slice(2)], {
  stdio: "inherit",
});
for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"]) {
  process.on(signal, () => child.kill(signal));
}
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
