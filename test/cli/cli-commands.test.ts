import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningBridge } from "../../bridge/bridge.ts";
import { LocalStore } from "../../storage/local-store.ts";
import { objectKey } from "../../storage/object-key.ts";
import { offloadNow, startTestBridge, testStoreConfig } from "../support/bridge-harness.ts";
import { fixture } from "../support/fixtures.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";

const BIN = fileURLToPath(new URL("../../bin/pg-offload.js", import.meta.url));
const run = promisify(execFile);

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], env: Record<string, string> = {}): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const COMMANDS = [
  "install",
  "bridge",
  "status",
  "run",
  "verify",
  "gc",
  "load-back",
  "config",
  "bench",
];

describe("the pg-offload command", () => {
  let db: TestDatabase;
  let store: Awaited<ReturnType<typeof testStoreConfig>>;
  let bridge: RunningBridge;
  let env: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase("cli");
    store = await testStoreConfig("local");
    bridge = await startTestBridge(db.url, store.config);
    await db.pool.query(fixture("events-table.sql"));
    // The run and load-back cases each change a table of their own (2,000 of events' rows, the
    // policy attached); events is offloaded here, once, for the cases that only read it.
    for (const table of ["run_events", "back_events"]) {
      await db.pool.query(`CREATE TABLE ${table} (LIKE events INCLUDING ALL)`);
      await db.pool.query(`INSERT INTO ${table} SELECT * FROM events WHERE id % 10 = 0`);
      await db.pool.query("SELECT offload.attach_policy($1, 'cold_after_30d')", [table]);
    }
    expect((await offloadNow(db.pool, "events")).state).toBe("succeeded");
    env = {
      PGOFFLOAD_DATABASE_URL: db.url,
      PGOFFLOAD_STORE_DIR: store.config.kind === "local" ? store.config.dir : "",
    };
  });

  afterAll(async () => {
    await bridge?.stop();
    await db?.drop();
    await store?.cleanup();
  });

  it.each(COMMANDS)("`%s --help` explains the command and needs no configuration", async (name) => {
    const { code, stdout } = await cli([name, "--help"]);
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`^pg-offload ${name}`));
  });

  it("lists every command, and refuses an unknown one with the list", async () => {
    const help = await cli(["--help"]);
    for (const name of COMMANDS) expect(help.stdout).toContain(`  ${name} `);
    const unknown = await cli(["offlaod"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "offlaod"');
  });

  it("run follows the job to its end, with plain progress lines off a terminal", async () => {
    const { code, stdout, stderr } = await cli(["run", "run_events"], env);
    expect(code).toBe(0);
    expect(stdout).toMatch(/job \d+ queued: offload of run_events/);
    expect(stderr).toMatch(/job \d+ succeeded: [\d,]+ rows moved/);
    expect(stderr).not.toContain("\r");
  });

  it("status prints offload.tables as a table", async () => {
    const { code, stdout } = await cli(["status"], env);
    expect(code).toBe(0);
    const [header, rule, ...rows] = stdout.split("\n");
    expect(header).toMatch(/^table +\| policy +\| hot_rows/);
    expect(rule).toMatch(/^-+-\+-/);
    // One row per table with a policy: events (offloaded in beforeAll) among them.
    expect(
      rows.filter((row) => /^events +\| cold_after_30d .*\| succeeded/.test(row)),
    ).toHaveLength(1);
  });

  it("verify reports every segment, and a usage error gets the command's help", async () => {
    const verified = await cli(["verify", "events"], env);
    expect(verified.code).toBe(0);
    const committed = await db.pool.query(
      "SELECT count(*)::int AS n FROM offload.segments WHERE table_id = 'events'::regclass AND state = 'committed'",
    );
    expect(committed.rows[0].n).toBeGreaterThan(0);
    expect(verified.stdout).toContain(`\n${committed.rows[0].n} segments checked, 0 failed`);
    const usage = await cli(["verify"], env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("pg-offload verify <table>");
  });

  it("gc --dry-run lists without removing; load-back brings the rows home", async () => {
    const gc = await cli(["gc", "--dry-run"], env);
    expect(gc.code).toBe(0);
    expect(gc.stdout).toMatch(/objects listed, \d+ garbage, 0 removed/);
    const cold = await db.pool.query(
      "SELECT count(*) FROM offload.segments WHERE state = 'committed'",
    );
    expect(Number(cold.rows[0].count)).toBeGreaterThan(0);
    const offloaded = await offloadNow(db.pool, "back_events");
    expect(offloaded.state).toBe("succeeded");
    expect(Number(offloaded.rows_done)).toBeGreaterThan(0);
    const back = await cli(["load-back", "back_events"], env);
    expect(back.code).toBe(0);
    expect(back.stdout).toMatch(/[\d,]+ rows loaded back/);
    const hot = await db.pool.query("SELECT count(*) FROM ONLY back_events");
    expect(Number(hot.rows[0].count)).toBe(2_000);
  });

  it("gc's whole output reaches a pipe whose reader is slow (the CLI exits once it is written)", async () => {
    if (store.config.kind !== "local") throw new Error("unreachable");
    const installation = (await db.pool.query("SELECT offload.current_installation() AS id"))
      .rows[0].id;
    // Objects named like chunks of a segment no catalog row knows: garbage, each a line of the
    // dry run, far more lines than a pipe holds (64 KiB).
    const planted = new LocalStore(store.config.dir);
    const keys = Array.from(
      { length: 1500 },
      (_, i) => `${installation}/s${900_000 + i}-abcdef/e1/000001.chunk`,
    );
    for (const key of keys) await planted.put(objectKey(key), Buffer.from("x"));
    try {
      // A slow reader on a pipe, as in `pg-offload gc | (sleep 2; tail -1)`: the CLI is done
      // when the reader starts, with most of its output still waiting to go out. (A CLI slower
      // than the sleep would let this pass without the fix; it can never fail a correct one.)
      const { stdout, stderr } = await run(
        "sh",
        [
          "-c",
          '{ "$0" "$1" gc --dry-run; echo "exit $?" >&2; } | { sleep 2; cat; }',
          process.execPath,
          BIN,
        ],
        { env: { PATH: process.env.PATH, ...env }, maxBuffer: 64 * 1024 * 1024 },
      );
      expect(stderr).toBe("exit 0\n");
      const lines = stdout.trimEnd().split("\n");
      for (const key of keys) expect(stdout).toContain(`would remove ${key} (1 bytes)`);
      expect(lines.at(-1)).toMatch(/^\d+ objects listed, \d+ garbage, 0 removed/);
      // A reader that takes one line and goes: the CLI stops quietly, no EPIPE stack trace.
      const head = await run(
        "bash",
        [
          "--norc",
          "-c",
          'set -o pipefail; "$0" "$1" gc --dry-run | head -1',
          process.execPath,
          BIN,
        ],
        { env: { PATH: process.env.PATH, ...env } },
      );
      expect(head.stdout.split("\n").filter(Boolean)).toHaveLength(1);
      expect(head.stderr).toBe("");
    } finally {
      for (const key of keys) await planted.delete(objectKey(key));
    }
  });

  it("a command that cannot reach its database exits 1 saying why", async () => {
    // A database that refuses the connection: node-postgres's error for it names the address.
    const refused = await cli(["status"], {
      ...env,
      PGOFFLOAD_DATABASE_URL: "postgres://127.0.0.1:1/x",
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^pg-offload: .*ECONNREFUSED/m);
  });

  // Every command that reaches the database, with one it cannot reach, and every command with
  // an argument it cannot take: never a bare exit code.
  it.each([
    ["install"],
    ["bridge"],
    ["status"],
    ["run", "events"],
    ["verify", "events"],
    ["gc", "--dry-run"],
    ["load-back", "events"],
  ])("pg-offload %s fails saying why when the database is unreachable", async (...args) => {
    const outcome = await cli(args, { ...env, PGOFFLOAD_DATABASE_URL: "postgres://127.0.0.1:1/x" });
    expect(outcome.code).not.toBe(0);
    expect(outcome.stderr).toMatch(/pg-offload\b.*\S.*(ECONNREFUSED|connect)/is);
  });

  it.each([["run"], ["verify"], ["load-back"], ["load-back", "events", "--from"], ["nope"]])(
    "pg-offload %s with missing or unknown arguments exits 2 with the usage",
    async (...args) => {
      const outcome = await cli(args, env);
      expect(outcome.code).toBe(2);
      expect(outcome.stderr).toMatch(/^pg-offload\b.+\S/);
    },
  );

  it("a bad setting stops the command, named", async () => {
    const { code, stderr } = await cli(["status"], { ...env, PGOFFLOAD_POLL_MS: "soon" });
    expect(code).toBe(1);
    expect(stderr).toContain('PGOFFLOAD_POLL_MS must be an integer >= 1, got "soon"');
  });
});
