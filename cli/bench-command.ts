import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import type { Command } from "./command.ts";

const BENCH = fileURLToPath(new URL("../bench/run-bench.ts", import.meta.url));

export const benchCommand: Command = {
  name: "bench",
  summary: "run the benchmark (a throwaway server and stores of its own; see BENCHMARKS.md)",
  help: `pg-offload bench [options]

Runs npm run bench: builds its own PostgreSQL server, local store and S3 server, so it needs no
configuration and touches no database of yours. Options as \`pg-offload bench --help-bench\`
lists them (e.g. --rows 500000 --store local).`,
  async run(args) {
    const passed = args.map((arg) => (arg === "--help-bench" ? "--help" : arg));
    const child = spawn(process.execPath, ["--import", "tsx", BENCH, ...passed], {
      stdio: "inherit",
    });
    const [code] = await once(child, "exit");
    return code ?? 1;
  },
};
