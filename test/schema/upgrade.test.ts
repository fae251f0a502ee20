import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  installSchema,
  loadMigrations,
  SchemaInstallError,
  SchemaTooNewError,
} from "../../bridge/schema-installer.ts";
import type { RunningBridge } from "../../bridge/bridge.ts";
import { startTestBridge, waitForJob } from "../support/bridge-harness.ts";
import { quickBridgeEnv, spawnBridge, spawnPgOffload } from "../support/bridge-process.ts";
import { tableDigest } from "../support/digest.ts";
import { fixture, partitionsOf } from "../support/fixtures.ts";
import { offloadSchemaDump } from "../support/schema-dump.ts";
import { pgDumpPath } from "../support/server-tools.ts";
import {
  createEmptyDatabase,
  createTestDatabase,
  type TestDatabase,
} from "../support/test-database.ts";

const run = promisify(execFile);
const REPO = fileURLToPath(new URL("../../", import.meta.url));
/** The first release: the starting point every upgrade path is tested from. */
const FIRST_RELEASE = "v0.1.0";

/**
 * The tree of a tagged release with its own dependencies (0.1.0 compressed with the native
 * zstd-napi, which this release no longer has), installed once per machine in the system's
 * temporary directory: outside the checkout, where lint and format checks would read it.
 */
async function checkoutRelease(tag: string): Promise<string> {
  const dir = join(tmpdir(), "pg-offload-releases", tag);
  if (existsSync(join(dir, "node_modules", ".package-lock.json"))) return dir;
  await run("git", ["-C", REPO, "rev-parse", "--verify", `${tag}^{commit}`]).catch(() => {
    throw new Error(`git tag ${tag} is missing from this clone: git fetch --tags, then run again`);
  });
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await run("sh", ["-c", `git -C "${REPO}" archive ${tag} | tar -x -C "${dir}"`]);
  await run("npm", ["ci", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"], {
    cwd: dir,
    maxBuffer: 16 * 1024 * 1024,
  });
  return dir;
}

async function pgOffload(root: string, args: string[], databaseUrl: string) {
  const command = spawnPgOffload(args, { PGOFFLOAD_DATABASE_URL: databaseUrl }, { root });
  const { code } = await command.exited;
  return { code, output: command.output() };
}

describe.skipIf(!pgDumpPath("the upgrade test"))(`upgrade from ${FIRST_RELEASE}`, () => {
  let release: string;
  let storeDir: string;
  /** The migrations since 0.1.0 (whose last was 17), and the newest. */
  let since: number[];
  let newest: string;
  const databases: TestDatabase[] = [];
  const bridges: RunningBridge[] = [];

  // The first run installs 0.1.0's dependencies (a native build among them): minutes, not seconds.
  beforeAll(async () => {
    release = await checkoutRelease(FIRST_RELEASE);
    const migrations = await loadMigrations();
    since = migrations.map((m) => m.version).filter((v) => v > 17);
    newest = migrations.at(-1)!.name;
    storeDir = await mkdtemp(join(tmpdir(), "pg-offload-upgrade-store-"));
  }, 300_000);
  afterAll(async () => {
    await Promise.all(bridges.map((b) => b.stop()));
    await Promise.all(databases.map((d) => d.drop()));
    await rm(storeDir, { recursive: true, force: true });
  });

  async function database(label: string, fresh: "empty" | "installed") {
    const db = await (fresh === "empty" ? createEmptyDatabase(label) : createTestDatabase(label));
    databases.push(db);
    return db;
  }

  it("a database installed and offloaded by 0.1.0 upgrades to the fresh schema, its rows unchanged", async () => {
    const db = await database("upgrade", "empty");
    expect(await pgOffload(release, ["install"], db.url)).toMatchObject({ code: 0 });
    await db.pool.query(fixture("awkward-table.sql"));
    await db.pool.query(
      "SELECT offload.define_policy('cold_after_30d', time_column => 'created_at', older_than => interval '30 days')",
    );
    await db.pool.query("SELECT offload.attach_policy('public.awkward', 'cold_after_30d')");
    const before = await tableDigest(db.pool, "awkward");
    // A partitioned table too: 0.1.0 attached its offloaded partitions as foreign tables under
    // new names, which migration 020 turns into this release's shape.
    await db.pool.query(fixture("partitioned-table.sql"));
    await db.pool.query(
      "SELECT offload.define_policy('cold_after_60d', time_column => 'created_at', older_than => interval '60 days')",
    );
    await db.pool.query("SELECT offload.attach_policy('public.metrics', 'cold_after_60d')");
    const metricsBefore = await tableDigest(db.pool, "metrics");
    const partitionNames = (await partitionsOf(db.pool, "metrics")).map((p) => p.name);

    // Offloaded by 0.1.0's own bridge, so the segments, chunks and layouts are 0.1.0's.
    const oldBridge = spawnBridge(quickBridgeEnv(db.url, storeDir), { root: release });
    try {
      await oldBridge.started();
      for (const table of ["awkward", "metrics"]) {
        const { rows } = await db.pool.query("SELECT offload.run($1) AS id", [table]);
        expect(await waitForJob(db.pool, Number(rows[0].id))).toMatchObject({ state: "succeeded" });
      }
    } finally {
      await oldBridge.kill("SIGTERM");
    }
    const cold = await db.pool.query(
      "SELECT count(*)::int AS n FROM offload.segments WHERE state = 'committed'",
    );
    expect(cold.rows[0].n).toBeGreaterThan(0);

    const client = await db.pool.connect();
    try {
      expect(await installSchema(client)).toEqual(since);
    } finally {
      client.release();
    }
    const fresh = await database("upgrade-fresh", "installed");
    expect(await offloadSchemaDump(db.url)).toBe(await offloadSchemaDump(fresh.url));

    // Read back through this release's bridge: every row as before, the cold ones from the store.
    bridges.push(await startTestBridge(db.url, { kind: "local", dir: storeDir }));
    expect(await tableDigest(db.pool, "awkward")).toBe(before);
    const hot = await db.pool.query("SELECT count(*)::int AS n FROM ONLY awkward");
    const all = await db.pool.query("SELECT count(*)::int AS n FROM awkward");
    expect(hot.rows[0].n).toBeLessThan(all.rows[0].n);

    // The offloaded partitions have their names back, each a partitioned table holding its
    // foreign table, and read as before; DROP TABLE of one (pg_partman's retention) works.
    const partitions = await partitionsOf(db.pool, "metrics");
    expect(partitions.map((p) => p.name)).toEqual(partitionNames);
    const offloaded = partitions.filter((p) => p.kind === "p");
    expect(offloaded.length).toBeGreaterThan(0);
    for (const partition of offloaded) {
      expect(await partitionsOf(db.pool, partition.oid)).toEqual([
        expect.objectContaining({ kind: "f", name: expect.stringMatching(/__offloaded_\d+$/) }),
      ]);
    }
    expect(await tableDigest(db.pool, "metrics")).toBe(metricsBefore);
    const client2 = await db.pool.connect();
    try {
      await client2.query("BEGIN");
      await client2.query(`DROP TABLE ${client2.escapeIdentifier(offloaded[0]!.name)}`);
      await client2.query("ROLLBACK");
    } finally {
      client2.release();
    }
  });

  it("0.1.0's installer refuses a database this release installed, and changes nothing", async () => {
    const db = await database("old-installer", "installed");
    const schema = await offloadSchemaDump(db.url);
    const { code, output } = await pgOffload(release, ["install"], db.url);
    expect(code).not.toBe(0);
    expect(output).toContain("this database's schema is newer than the installer");
    expect(output).toContain(`it has migration ${newest}`);
    expect(await offloadSchemaDump(db.url)).toBe(schema);
  });

  it("an installer refuses a database with a migration it does not know, and changes nothing", async () => {
    const db = await database("future-migration", "installed");
    await db.pool.query(
      "INSERT INTO offload.migrations (version, name) VALUES (999, '999_future')",
    );
    const schema = await offloadSchemaDump(db.url);
    const client = await db.pool.connect();
    try {
      const error = await installSchema(client).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SchemaTooNewError);
      expect(String(error)).toContain("it has migration 999_future");
      expect(String(error)).toContain(`knows migrations up to ${since.at(-1)}`);
    } finally {
      client.release();
    }
    expect(await offloadSchemaDump(db.url)).toBe(schema);
  });

  it("an installer refuses a database whose functions a newer release installed", async () => {
    const db = await database("future-release", "installed");
    await db.pool.query("UPDATE offload.schema_release SET release = '99.0.0'");
    const client = await db.pool.connect();
    try {
      const error = await installSchema(client).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SchemaTooNewError);
      expect(error).not.toBeInstanceOf(SchemaInstallError);
      expect(String(error)).toContain("release 99.0.0 installed it");
    } finally {
      client.release();
    }
    const { rows } = await db.pool.query("SELECT release FROM offload.schema_release");
    expect(rows[0].release).toBe("99.0.0");
  });

  it("installing again changes nothing, and a bridge's install then takes no lock on the catalog", async () => {
    const db = await database("reinstall", "installed");
    const schema = await offloadSchemaDump(db.url);
    // Another session's work on the catalog (a bridge's job claim) holds a lock on offload.jobs.
    const other = await db.pool.connect();
    const client = await db.pool.connect();
    try {
      await other.query("BEGIN");
      await other.query("LOCK TABLE offload.jobs IN ROW SHARE MODE");
      await client.query("SET lock_timeout = '1s'");
      expect(await installSchema(client)).toEqual([]);
      // Applying the definitions again re-creates row security policies on offload.jobs, which
      // must wait for that session: `pg-offload install` does so, a starting bridge does not.
      await expect(installSchema(client, { functions: "always" })).rejects.toThrow(/lock timeout/);
      await other.query("COMMIT");
      expect(await installSchema(client, { functions: "always" })).toEqual([]);
    } finally {
      other.release();
      client.release();
    }
    expect(await offloadSchemaDump(db.url)).toBe(schema);
  });
});
