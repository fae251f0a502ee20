#!/usr/bin/env node
// Runs the TypeScript CLI with tsx registered as Node's module loader, so the package needs no
// build step. It runs in this very process rather than in a child: signals (`docker stop`'s
// SIGTERM to PID 1 in the container) reach the bridge itself, and a SIGKILL of this process
// cannot leave a bridge running on as an orphan, still serving reads and taking jobs.
import { register } from "tsx/esm/api";

register();
await import("../cli/main.ts");
