#!/usr/bin/env node
// Runs the TypeScript CLI with tsx registered as Node's module loader, so the package needs no
// build step. It runs in this very process rather than in a child: signals (`docker stop`'s
// SIGTERM to PID 1 in the container) reach the bridge itself, and a SIGKILL of this process
// cannot leave a bridge running on as an orphan, still serving reads and taking jobs.
import { readFileSync } from "node:fs";
import { register } from "tsx/esm/api";

// An older Node than package.json's engines (zstd in node:zlib came with 22.15): say so, not a
// SyntaxError from deep inside the sources.
const { engines } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
const floor = /^>=(\d+)\.(\d+)$/.exec(engines.node).slice(1).map(Number);
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < floor[0] || (major === floor[0] && minor < floor[1])) {
  console.error(`pg-offload needs Node.js ${floor.join(".")} or newer; this is ${process.version}`);
  process.exit(1);
}

register();
await import("../cli/main.ts");
