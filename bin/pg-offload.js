#!/usr/bin/env node
// Runs the TypeScript CLI with tsx registered as Node's module loader, so the package needs no
// build step. It runs in this very process rather than in a child: signals (`docker stop`'s
// SIGTERM to PID 1 in the container) reach the bridge itself, and a SIGKILL of this process
// cannot leave a bridge running on as an orphan, still serving reads and taking jobs.
import { register } from "tsx/esm/api";

// zstd in node:zlib came with 22.15 (package.json engines): say so, not a SyntaxError from deep
// inside the sources.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 15)) {
  console.error(`pg-offload needs Node.js 22.15 or newer; this is ${process.version}`);
  process.exit(1);
}

register();
await import("../cli/main.ts");
