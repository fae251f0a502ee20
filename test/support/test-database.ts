import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { inject, TestRunner } from "vitest";
import type { RunnerTask, RunnerTestCase, RunnerTestFile } from "vitest";
import pg from "pg";

const run = promisify(execFile);

export const TEMPLATE_DATABASE = "pg_offload_template";

/** The reader the suite's offloads use unless a policy names one (README, Tests). */
const TEST_READER = ["file_fdw", "postgres_fdw"].find(
  (r) => r === process.env.PGOFFLOAD_TEST_READER,
);

const REPO = fileURLToPath(new URL("../../", import.meta.url));
/** Where the databases of failed tests are dumped; global setup empties it at each run's start. */
export const FAILED_DB_DIR = join(REPO, ".tmp", "failed-db");

export interface TestDatabase {
  name: string;
  url: string;
  /** A pool for the test's own queries (not the bridge's). */
  pool: pg.Pool;
  /**
   * Closes the pool and drops the database, unless the test that made it failed (or, for a
   * database made outside any test, say in beforeAll, unless a test of the file has failed):
   * then it is kept and dumped, and where is printed (see settleDatabases). Called where the
   * outcome is not known yet (a `finally` in the test, which runs before its failure is
   * recorded), it leaves the decision to the end of the file. Connections still open to the
   * database when it is dropped are reported as leaks (see leak-check.ts).
   */
  drop(): Promise<void>;
}

interface Created {
  name: string;
  url: string;
  pool: pg.Pool;
  /** The test that was running when the database was made; undefined for beforeAll and the like. */
  owner: RunnerTestCase | undefined;
  released: boolean;
}

/** The databases made by this test file (each file runs in a module registry of its own). */
const created: Created[] = [];
/** Sessions found on a database as drop() dropped it: leaks, reported at the end of the file. */
export const sessionsAtDrop: string[] = [];
let currentFile: RunnerTestFile | undefined;

/** Called by file-hooks.ts before the file's first hook: whose failures drop() looks at. */
export function setCurrentFile(file: RunnerTestFile): void {
  currentFile = file;
}

export function serverUrl(database = "postgres"): string {
  const { host, port, user } = inject("postgres");
  return `postgres://${user}@${host}:${port}/${database}`;
}

/**
 * Clones the template (schema installed) into a database of the test's own. `reader` pins the
 * database's default reader for tests of one reader's own workings (the file reader's program
 * and endpoint), whatever PGOFFLOAD_TEST_READER says.
 */
export async function createTestDatabase(
  label: string,
  options: { reader?: "file_fdw" | "postgres_fdw" } = {},
): Promise<TestDatabase> {
  return createDatabase(label, TEMPLATE_DATABASE, options.reader ?? TEST_READER, !options.reader);
}

/** A database with nothing in it (not even the offload schema), e.g. to restore a dump into. */
export async function createEmptyDatabase(label: string): Promise<TestDatabase> {
  return createDatabase(label, "template0", TEST_READER, true);
}

async function createDatabase(
  label: string,
  template: string,
  reader: string | undefined,
  /** The reader is the suite's (PGOFFLOAD_TEST_READER), not one the test pinned. */
  suiteReader: boolean,
): Promise<TestDatabase> {
  const name =
    "t_" +
    createHash("sha1")
      .update(label + Math.random())
      .digest("hex")
      .slice(0, 16);
  await withAdmin(async (admin) => {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
    // The whole suite runs through either reader: PGOFFLOAD_TEST_READER=postgres_fdw makes it the
    // database's default (policies that name a reader keep theirs).
    if (reader) await admin.query(`ALTER DATABASE ${name} SET pg_offload.reader = '${reader}'`);
    // ... segment for segment: the suite's tests count and name segment tables, so in that run
    // no segments are merged (test/remote-reader/segment-merges.test.ts, the differential
    // tester and test/managed/ cover merges, with bounds of their own).
    if (suiteReader && reader === "postgres_fdw") {
      await admin.query(`ALTER DATABASE ${name} SET pg_offload.segment_tables = 1000000`);
    }
  });
  const url = serverUrl(name);
  const pool = new pg.Pool({ connectionString: url, max: 8 });
  pool.on("error", () => {});
  const entry: Created = { name, url, pool, owner: TestRunner.getCurrentTest(), released: false };
  created.push(entry);
  return {
    name,
    url,
    pool,
    async drop() {
      if (entry.released) return;
      entry.released = true;
      await pool.end();
      const outcome = outcomeNow(entry);
      if (outcome !== "passed") return; // kept, or decided at the end of the file
      created.splice(created.indexOf(entry), 1);
      await dropNow(entry.name);
    },
  };
}

/**
 * "passed" when nothing that used the database can still fail: its test passed (drop() from
 * afterEach), or, made outside a test, no test of the file has failed so far (drop() from
 * afterAll, its suite's tests done). "failed" when its test, or for one made outside a test any
 * test of the file, has failed. "unknown" inside the test itself, whose outcome comes later.
 */
function outcomeNow(entry: Created): "passed" | "failed" | "unknown" {
  if (entry.owner) {
    const state = entry.owner.result?.state;
    return state === "pass" ? "passed" : state === "fail" ? "failed" : "unknown";
  }
  if (TestRunner.getCurrentTest() || !currentFile) return "unknown";
  return failures(currentFile).length > 0 ? "failed" : "passed";
}

const SETTLE_MS = 5_000;

/** Drops the database; sessions still on it after a moment are leaks, recorded for the report. */
async function dropNow(name: string): Promise<void> {
  await withAdmin(async (admin) => {
    const deadline = Date.now() + SETTLE_MS;
    for (;;) {
      // A backend of a pool just ended may take a moment to exit.
      const { rows } = await admin.query<{ session: string }>(
        `SELECT format('pid %s on database %s (application_name %L, %s): %s', pid, datname,
                       application_name, state, left(query, 200)) AS session
           FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
        [name],
      );
      if (rows.length === 0) break;
      if (Date.now() > deadline) {
        sessionsAtDrop.push(...rows.map((r) => r.session));
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  });
}

async function withAdmin<T>(work: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.end();
  }
}

/** The names of the databases this file made and has not settled yet. */
export function fileDatabases(): string[] {
  return created.map((c) => c.name);
}

/** The full names ("describe > test") of the file's failed tests, and of suites whose hooks failed. */
export function failures(file: RunnerTestFile): string[] {
  const failed: string[] = [];
  const walk = (task: RunnerTask, path: string[]) => {
    const here = task === file ? [] : [...path, task.name];
    if (task.type === "test") {
      if (task.result?.state === "fail") failed.push(here.join(" > "));
      return;
    }
    // A suite fails by itself only through its hooks (beforeAll, afterAll).
    if (task.result?.errors?.length) failed.push(`${here.join(" > ") || "file"} (hook)`);
    for (const child of task.tasks) walk(child, here);
  };
  walk(file, []);
  return failed;
}

/**
 * After the file's own hooks: drops each database whose test passed; keeps each database whose
 * test failed (or, for a database made outside a test, any test of the file) on the server for
 * the rest of the run, dumps it to .tmp/failed-db/, and returns what to print about it. A
 * database whose drop() was never called has its pool closed here: the leak check, which runs
 * before, reports the connections it held.
 */
export async function settleDatabases(file: RunnerTestFile): Promise<string[]> {
  const fileFailures = failures(file);
  const reports: string[] = [];
  for (const entry of created.splice(0)) {
    if (!entry.released) {
      entry.released = true;
      await entry.pool.end();
    }
    const failedTest =
      entry.owner === undefined
        ? fileFailures.length > 0
          ? fileFailures.join("; ")
          : undefined
        : entry.owner.result?.state === "fail"
          ? fullName(entry.owner)
          : undefined;
    if (failedTest === undefined) {
      await dropNow(entry.name);
      continue;
    }
    reports.push(await keep(entry, file, failedTest));
  }
  return reports;
}

function fullName(test: RunnerTestCase): string {
  const names = [test.name];
  for (let suite = test.suite; suite && suite !== test.file; suite = suite.suite) {
    names.unshift(suite.name);
  }
  return names.join(" > ");
}

async function keep(entry: Created, file: RunnerTestFile, failedTest: string): Promise<string> {
  const { binDir } = inject("postgres");
  const slug = (text: string) =>
    text
      .replace(/[^A-Za-z0-9._-]+/g, "-")
      .replace(/^-|-$/g, "")
      .slice(0, 80);
  const dir = join(FAILED_DB_DIR, slug(file.name));
  await mkdir(dir, { recursive: true });
  const dumpFile = join(
    dir,
    `${slug(entry.owner ? fullName(entry.owner) : "made-outside-a-test")}--${entry.name}.sql`,
  );
  let dumped = `dump      ${relative(process.cwd(), dumpFile)}
  restore   createdb <name> && psql -d <name> -f ${relative(process.cwd(), dumpFile)}
            (into any PostgreSQL 15; errors about roles the test made and that do not exist
            there leave only ownership and grants out)`;
  try {
    await run(join(binDir, "pg_dump"), ["--dbname", entry.url, "--file", dumpFile]);
  } catch (error) {
    // The database stays on the server either way; a failed dump must not hide the test's failure.
    dumped = `dump      failed: ${(error as Error).message.trim()}`;
  }
  return `test failed: ${failedTest}
  its database is kept, not dropped:
  database  ${entry.name}  ${entry.url}
            (on this run's temporary server: it is there until the run ends, e.g. in watch mode)
  ${dumped}
  remove    the dumps: rm -r ${relative(process.cwd(), FAILED_DB_DIR)} (the next run empties it too)`;
}
