import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type pg from "pg";

const run = promisify(execFile);

/**
 * Best wall time of `runs` executions, in milliseconds: the least disturbed by the machine.
 * `before` runs ahead of each, untimed.
 */
export async function bestOf(
  runs: number,
  work: () => Promise<unknown>,
  before?: () => Promise<unknown>,
): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    await before?.();
    const started = performance.now();
    await work();
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

export async function timeQuery(
  db: pg.Client,
  sql: string,
  options: { workers: number; runs: number; before?: () => Promise<unknown> },
): Promise<number> {
  await db.query(`SET max_parallel_workers_per_gather = ${options.workers}`);
  return bestOf(options.runs, () => db.query(sql), options.before);
}

/**
 * The pipeline a user would write instead of pg-offload, timed as a whole: psql's COPY TO STDOUT
 * piped through the zstd command at the same level into a file. Returns the compressed size.
 */
export async function copyThroughZstd(
  psql: string,
  url: string,
  copySql: string,
  level: number,
  file: string,
): Promise<number> {
  const script = 'set -o pipefail; "$0" -X -q -d "$1" -c "$2" | zstd -q -f -"$3" -o "$4"';
  await run("bash", ["-c", script, psql, url, copySql, String(level), file], {
    maxBuffer: 1024 * 1024,
  });
  const { stdout } = await run("stat", ["-c", "%s", file]);
  return Number(stdout.trim());
}

/** Fails early, with what to install, when a command the benchmark needs is missing. */
export async function requireCommand(command: string, hint: string): Promise<void> {
  await run("bash", ["-c", `command -v "$0"`, command]).catch(() => {
    throw new Error(`pg-offload bench: needs the \`${command}\` command (${hint})`);
  });
}
