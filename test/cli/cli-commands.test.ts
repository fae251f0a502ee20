import { execFile } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningBridge } from "../../bridge/bridge.ts";
import { startTestBridge, testStoreConfig } from "../support/bridge-harness.ts";
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
    const { code, stdout, stderr } = await cli(["run", "events"], env);
    expect(code).toBe(0);
    expect(stdout).toMatch(/job \d+ queued: offload of events/);
    expect(stderr).toMatch(/job \d+ succeeded: [\d,]+ rows moved/);
    expect(stderr).not.toContain("\r");
  });

  it("status prints offload.tables as a table", async () => {
    const { code, stdout } = await cli(["status"], env);
    expect(code).toBe(0);
    const [header, rule, row] = stdout.split("\n");
    expect(header).toMatch(/^table +\| policy +\| hot_rows/);
    expect(rule).toMatch(/^-+-\+-/);
    expect(row).toMatch(/^events +\| cold_after_30d .*\| succeeded/);
  });

  it("verify reports every segment, and a usage error gets the command's help", async () => {
    const verified = await cli(["verify", "events"], env);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/\d+ segments checked, 0 failed/);
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
    const back = await cli(["load-back", "events"], env);
    expect(back.code).toBe(0);
    expect(back.stdout).toMatch(/[\d,]+ rows loaded back/);
    const hot = await db.pool.query("SELECT count(*) FROM ONLY events");
    expect(Number(hot.rows[0].count)).toBe(20_000);
  });

  it("prints all of a long output through a pipe before it exits (gc --dry-run of 3,000 objects)", async () => {
    if (store.config.kind !== "local") throw new Error("unreachable");
    const { rows } = await db.pool.query("SELECT offload.current_installation() AS id");
    // Objects of a segment no catalog row knows: each is listed as garbage, one line each.
    const dir = join(store.config.dir, rows[0].id, "s999999999-00ff", "e1");
    await mkdir(dir, { recursive: true });
    try {
      for (let i = 1; i <= 3_000; i++) {
        await writeFile(join(dir, `${String(i).padStart(6, "0")}.chunk`), "x");
      }
      const gc = await cli(["gc", "--dry-run"], env);
      expect(gc.code).toBe(0);
      expect(gc.stdout.match(/^would remove .*s999999999-00ff/gm)?.length).toBe(3_000);
      expect(gc.stdout).toMatch(/objects listed, \d+ garbage, 0 removed\n$/);
    } finally {
      await rm(dirname(dir), { recursive: true, force: true });
    }
  });

  it("a bad setting stops the command, named", async () => {
    const { code, stderr } = await cli(["status"], { ...env, PGOFFLOAD_POLL_MS: "soon" });
    expect(code).toBe(1);
    expect(stderr).toContain('PGOFFLOAD_POLL_MS must be an integer >= 1, got "soon"');
  });
});
