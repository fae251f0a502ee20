import { rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningBridge } from "../../bridge/bridge.ts";
import { collectGarbage } from "../../bridge/garbage-collector.ts";
import {
  offloadNow,
  startTestBridge,
  testStoreConfig,
  waitForJob,
} from "../support/bridge-harness.ts";
import { quickBridgeEnv, spawnPgOffload, type BridgeProcess } from "../support/bridge-process.ts";
import { duplicatedIds, tableDigest } from "../support/digest.ts";
import { fixture, resultSet, segmentTables } from "../support/fixtures.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";
import { waitUntil } from "../support/wait.ts";

// Bounded segment tables: a table read through postgres_fdw keeps at most its policy's
// segment_tables foreign tables, however many segments its offloads write. A merge moves chunks
// in the catalog and writes nothing to the store. Every query must answer as the same table never
// offloaded, before and after merges, after garbage collection, rewrites and load back; a bridge
// killed before or after the merge's commit, or a merge that waits out its lock timeout, must
// leave every row once.

const QUERIES = [
  "SELECT * FROM {t} ORDER BY id",
  "SELECT count(*), min(created_at), max(created_at), sum(amount) FILTER (WHERE amount <> 'NaN') FROM {t}",
  "SELECT * FROM {t} WHERE id = 17",
  "SELECT * FROM {t} WHERE id BETWEEN 400 AND 460 AND label IS NOT NULL ORDER BY id",
  "SELECT * FROM {t} WHERE created_at < now() - interval '100 days' ORDER BY id",
  "SELECT a.id, b.label FROM {t} a JOIN {t} b ON b.id = a.id + 1 WHERE a.id % 97 = 0 ORDER BY a.id",
  "SELECT feeling, count(*), string_agg(label, '|' ORDER BY id) FROM {t} GROUP BY feeling ORDER BY feeling",
];

const BOUND = 4;
const LOCK_TIMEOUT_MS = 300;

let db: TestDatabase;
let store: Awaited<ReturnType<typeof testStoreConfig>>;
let bridge: RunningBridge;
const spawned: BridgeProcess[] = [];

async function expectSameAsControl(table: string, control: string): Promise<void> {
  for (const sql of QUERIES) {
    expect(await resultSet(db.pool, sql.replaceAll("{t}", table)), sql).toEqual(
      await resultSet(db.pool, sql.replaceAll("{t}", control)),
    );
  }
}

async function committedSegments(table: string): Promise<number> {
  const { rows } = await db.pool.query(
    "SELECT count(*)::int AS n FROM offload.segments WHERE table_id = $1::regclass AND state = 'committed'",
    [table],
  );
  return rows[0].n;
}

/** The committed segments' current chunks, by object key: what reads and verify rely on. */
async function liveChunks(table: string): Promise<string[]> {
  const { rows } = await db.pool.query(
    `SELECT c.object_key FROM offload.chunks c
       JOIN offload.segments s ON s.id = c.segment_id AND s.epoch = c.epoch
      WHERE s.table_id = $1::regclass AND s.state = 'committed' ORDER BY 1`,
    [table],
  );
  return rows.map((r) => r.object_key as string);
}

beforeAll(async () => {
  db = await createTestDatabase("segment-merges", { reader: "postgres_fdw" });
  store = await testStoreConfig("local");
  bridge = await startTestBridge(db.url, store.config, {
    overrides: { segmentTargetBytes: 48 * 1024, chunkBytes: 16 * 1024 },
  });
  await db.pool.query(fixture("awkward-table.sql"));
  await db.pool.query("CREATE TABLE awkward_control AS SELECT * FROM awkward");
  await db.pool.query(
    `SELECT offload.define_policy('merged_30d', time_column => 'created_at',
       older_than => interval '30 days', zone_map_columns => '{id}', reader => 'postgres_fdw',
       segment_tables => ${BOUND})`,
  );
  await db.pool.query("SELECT offload.attach_policy('public.awkward', 'merged_30d')");
});

afterAll(async () => {
  for (const child of spawned) await child.kill("SIGKILL");
  await bridge?.stop();
  await db?.drop();
  await store?.cleanup();
});

describe("bounded segment tables", () => {
  it("refuses a bound below 1 at definition", async () => {
    await expect(
      db.pool.query(
        `SELECT offload.define_policy('no_tables', time_column => 'created_at',
           older_than => interval '1 day', segment_tables => 0)`,
      ),
    ).rejects.toMatchObject({ code: "22023", message: expect.stringMatching(/segment_tables/) });
  });

  it("takes the database's default bound where a policy sets none, and refuses a bad one", async () => {
    const client = await db.pool.connect();
    try {
      const bound = async () =>
        (await client.query("SELECT offload.segment_table_bound('awkward_control') AS n")).rows[0]
          .n;
      expect(await bound()).toBe(4);
      await client.query("SET pg_offload.segment_tables = '16'");
      expect(await bound()).toBe(16);
      await client.query("SET pg_offload.segment_tables = 'lots'");
      await expect(bound()).rejects.toMatchObject({
        code: "22023",
        message: expect.stringContaining("pg_offload.segment_tables must be a whole number"),
      });
    } finally {
      await client.query("RESET pg_offload.segment_tables");
      client.release();
    }
  });

  it("offloads into many segments and keeps at most segment_tables of them, every row once", async () => {
    expect(await offloadNow(db.pool, "public.awkward")).toMatchObject({ state: "succeeded" });
    const tables = await segmentTables(db.pool, "awkward");
    expect(tables.length).toBeGreaterThan(0);
    expect(tables.length).toBeLessThanOrEqual(BOUND);
    expect(await committedSegments("awkward")).toBe(tables.length);
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS merged, count(DISTINCT merged_into)::int AS into
         FROM offload.segments WHERE table_id = 'awkward'::regclass AND merged_into IS NOT NULL`,
    );
    expect(rows[0].merged).toBeGreaterThan(BOUND);
    expect(rows[0].into).toBeGreaterThan(0);
    await expectSameAsControl("awkward", "awkward_control");
    expect(await duplicatedIds(db.pool, "awkward")).toBe(0);
    const verified = await db.pool.query(
      "SELECT bool_and(ok) AS ok, count(*)::int AS n FROM offload.verify('awkward')",
    );
    expect(verified.rows[0]).toEqual({ ok: true, n: tables.length });
  });

  it("merges late rows offloaded later with the merged segments, and still reads exactly", async () => {
    const late = `SELECT i, timestamptz '2025-01-01 00:00+00' + i * interval '1 minute', label, amount, feeling
                    FROM (SELECT 3000 + g AS i, l.label, l.amount, l.feeling
                            FROM generate_series(1, 600) g
                            JOIN awkward_control l ON l.id = g) s`;
    for (const table of ["awkward", "awkward_control"]) {
      await db.pool.query(`INSERT INTO ${table} (id, created_at, label, amount, feeling) ${late}`);
    }
    const before = await liveChunks("awkward");
    expect(await offloadNow(db.pool, "public.awkward")).toMatchObject({ state: "succeeded" });
    expect((await segmentTables(db.pool, "awkward")).length).toBeLessThanOrEqual(BOUND);
    // The earlier chunks are still the objects they were: a merge moves catalog rows only.
    const after = new Set(await liveChunks("awkward"));
    for (const key of before) expect(after.has(key)).toBe(true);
    await expectSameAsControl("awkward", "awkward_control");
  });

  it("garbage collection removes no object a merged segment reads", async () => {
    const installation = (await db.pool.query("SELECT offload.current_installation() AS id"))
      .rows[0].id;
    const live = await liveChunks("awkward");
    const report = await collectGarbage(db.pool, bridge.store, installation, {
      graceMs: 0,
      leaseMs: 60_000,
      dryRun: false,
    });
    for (const candidate of report.candidates) expect(live).not.toContain(candidate.key);
    const { rows } = await db.pool.query(
      "SELECT count(*)::int AS n FROM offload.segments WHERE table_id = 'awkward'::regclass AND state = 'retired'",
    );
    expect(rows[0].n).toBe(0); // merged-away rows are forgotten, their chunks live on
    await expectSameAsControl("awkward", "awkward_control");
  });

  it("rewrites a merged segment exactly once", async () => {
    const { rows } = await db.pool.query(
      "SELECT offload.delete_cold('awkward', 'id % 5 = 0') AS id",
    );
    expect(await waitForJob(db.pool, Number(rows[0].id))).toMatchObject({ state: "succeeded" });
    await db.pool.query(
      `DELETE FROM awkward_control c WHERE id % 5 = 0
         AND NOT EXISTS (SELECT FROM ONLY awkward h WHERE h.id = c.id)`,
    );
    await expectSameAsControl("awkward", "awkward_control");
  });

  it("loads every merged row back", async () => {
    await db.pool.query("SELECT offload.load_back('awkward')");
    expect(await segmentTables(db.pool, "awkward")).toEqual([]);
    await expectSameAsControl("awkward", "awkward_control");
    await db.pool.query("SELECT offload.detach_policy('awkward')");
  });

  it("merges zone maps in the column's collation, not the database's", async () => {
    const { rows } = await db.pool.query(
      "SELECT collname FROM pg_collation WHERE collname IN ('en-US-x-icu', 'und-x-icu') ORDER BY 1",
    );
    if (rows.length === 0) return; // built without ICU: nothing orders unlike the C locale
    // Old segments hold 'a…' labels, newer ones 'B…': in C 'B' < 'a', in ICU 'a' < 'B'. A zone
    // map merged in the wrong order would make the CHECK exclude the segment from both queries.
    await db.pool.query(`
      CREATE TABLE collated (id bigint PRIMARY KEY, created_at timestamptz NOT NULL,
                             label text COLLATE "${rows[0].collname}");
      INSERT INTO collated
      SELECT g, timestamptz '2024-01-01 00:00+00' + g * interval '1 minute',
             CASE WHEN g <= 3000 THEN 'a' ELSE 'B' END || g
        FROM generate_series(1, 6000) g;
      CREATE TABLE collated_control AS SELECT * FROM collated;
      SELECT offload.define_policy('collated_cold', time_column => 'created_at',
        older_than => interval '30 days', zone_map_columns => '{label}', segment_bytes => 65536,
        reader => 'postgres_fdw', segment_tables => 1);
      SELECT offload.attach_policy('collated', 'collated_cold');`);
    expect(await offloadNow(db.pool, "collated")).toMatchObject({ state: "succeeded" });
    expect((await segmentTables(db.pool, "collated")).length).toBe(1);
    for (const where of ["label = 'a17'", "label = 'B5000'", "label < 'b'", "label > 'a2'"]) {
      const sql = `SELECT count(*), min(id), max(id) FROM {t} WHERE ${where}`;
      expect(await resultSet(db.pool, sql.replace("{t}", "collated")), where).toEqual(
        await resultSet(db.pool, sql.replace("{t}", "collated_control")),
      );
    }
  });

  it("leaves alone segment tables their owner altered or detached, and what queries see", async () => {
    const owner = `merge_owner_${process.pid}`;
    await db.pool.query(`CREATE ROLE ${owner}; GRANT CREATE ON SCHEMA public TO ${owner}`);
    try {
      await db.pool.query(`
        SET ROLE ${owner};
        CREATE TABLE hostile (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, v int);
        INSERT INTO hostile SELECT g, timestamptz '2024-01-01 00:00+00' + g * interval '1 minute', g
          FROM generate_series(1, 8000) g;
        RESET ROLE;
        SELECT offload.define_policy('hostile_cold', time_column => 'created_at',
          older_than => interval '30 days', segment_bytes => 65536, reader => 'postgres_fdw',
          segment_tables => 100);
        SET ROLE ${owner};
        SELECT offload.attach_policy('hostile', 'hostile_cold');
        RESET ROLE;`);
      expect(await offloadNow(db.pool, "hostile")).toMatchObject({ state: "succeeded" });
      const [altered, detached] = await segmentTables(db.pool, "hostile");
      // The owner owns the segment tables: a column of their own on one, another taken out of
      // the table (its rows no longer show; a merge must not bring them back).
      await db.pool.query(`SET ROLE ${owner};
        ALTER FOREIGN TABLE ${altered} ADD COLUMN extra int;
        ALTER TABLE ${detached} NO INHERIT hostile;
        RESET ROLE;`);
      const sql = "SELECT count(*), sum(v), min(id), max(id) FROM hostile";
      const seen = await resultSet(db.pool, sql);
      // (A test's shortcut: a policy's options are fixed once defined.)
      await db.pool.query(
        "UPDATE offload.policies SET segment_tables = 1 WHERE name = 'hostile_cold'",
      );
      expect(await offloadNow(db.pool, "hostile")).toMatchObject({ state: "succeeded" });
      const after = await segmentTables(db.pool, "hostile");
      expect(after).toContain(altered);
      expect(after).not.toContain(detached);
      expect(after.length).toBe(2); // the altered one, and all the others merged
      const kept = await db.pool.query(
        "SELECT state FROM offload.segments WHERE segment_table = ANY ($1::regclass[]) ORDER BY id",
        [[altered, detached]],
      );
      expect(kept.rows).toEqual([{ state: "committed" }, { state: "committed" }]);
      expect(await resultSet(db.pool, sql)).toEqual(seen);
    } finally {
      await db.pool.query(`DROP OWNED BY ${owner} CASCADE; DROP ROLE ${owner}`);
    }
  });

  it("leaves tables read by file_fdw as they are", async () => {
    await db.pool.query(
      fixture("awkward-table.sql")
        .replace(/^CREATE (TYPE|DOMAIN).*$/gm, "")
        .replaceAll("awkward", "awkward_files"),
    );
    await db.pool.query(
      `SELECT offload.define_policy('files_30d', time_column => 'created_at',
         older_than => interval '30 days', reader => 'file_fdw', segment_tables => 1)`,
    );
    await db.pool.query("SELECT offload.attach_policy('awkward_files', 'files_30d')");
    expect(await offloadNow(db.pool, "awkward_files")).toMatchObject({ state: "succeeded" });
    expect((await segmentTables(db.pool, "awkward_files")).length).toBeGreaterThan(1);
  });
});

// ---- Faults -------------------------------------------------------------------------------------

const FAULT_POLICY = `SELECT offload.define_policy('merge_faults', time_column => 'created_at',
  older_than => interval '30 days', segment_bytes => 131072, chunk_bytes => 16384,
  reader => 'postgres_fdw', segment_tables => 2)`;

async function faultTable(name: string): Promise<void> {
  await db.pool.query(`
    CREATE TABLE ${name} (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, v int, note text);
    INSERT INTO ${name}
    SELECT g, now() - (6000 - g) * interval '1 hour', g % 13,
           CASE g % 4 WHEN 0 THEN NULL WHEN 1 THEN E'tab\\there' ELSE 'row ' || g END
      FROM generate_series(1, 6000) g;
    CREATE TABLE ${name}_control AS SELECT * FROM ${name};
    SELECT offload.attach_policy('${name}', 'merge_faults');`);
}

async function expectEqualsControl(table: string): Promise<void> {
  expect(await tableDigest(db.pool, table)).toBe(await tableDigest(db.pool, `${table}_control`));
  expect(await duplicatedIds(db.pool, table)).toBe(0);
}

function spawnTracked(env: Record<string, string>): BridgeProcess {
  const child = spawnPgOffload(["bridge"], env);
  spawned.push(child);
  return child;
}

describe("a merge under faults", () => {
  let env: Record<string, string>;

  beforeAll(async () => {
    if (store.config.kind !== "local") throw new Error("unreachable");
    env = {
      ...quickBridgeEnv(db.url, store.config.dir),
      PGOFFLOAD_COMMIT_LOCK_TIMEOUT_MS: String(LOCK_TIMEOUT_MS),
    };
    await db.pool.query(FAULT_POLICY);
    // The in-process bridge would take the jobs: only the spawned ones work from here.
    await bridge.stop();
  });

  it.each(["before-merge", "after-merge"])(
    "the bridge killed at %s, then the job finished by another: every row once, within the bound",
    async (point) => {
      const table = `killed_${point.replace("-", "_")}`;
      await faultTable(table);
      const doomed = spawnTracked({ ...env, PGOFFLOAD_FAILPOINT: point });
      const id = Number((await db.pool.query("SELECT offload.run($1) AS id", [table])).rows[0].id);
      await waitUntil(
        async () => doomed.child.exitCode !== null || doomed.child.signalCode !== null,
        {
          context: doomed.output,
        },
      );
      expect(doomed.output()).toContain(`failpoint ${point} reached, killing`);
      const atKill = await committedSegments(table);
      if (point === "before-merge") expect(atKill).toBeGreaterThan(2);
      else expect(atKill).toBeLessThanOrEqual(2);
      // (Cold rows are read through a bridge: the table is compared once another one runs.)

      const survivor = spawnTracked(env);
      expect(await waitForJob(db.pool, id, 60_000)).toMatchObject({ state: "succeeded" });
      expect(await committedSegments(table)).toBeLessThanOrEqual(2);
      expect((await segmentTables(db.pool, table)).length).toBe(await committedSegments(table));
      await expectEqualsControl(table);
      await survivor.kill("SIGTERM");
    },
  );

  it("a merge that waits out its lock timeout fails its attempt; the retry lands it once", async () => {
    const table = "lock_timeout";
    await faultTable(table);
    const resumeFile = join(tmpdir(), `pg-offload-merge-resume-${process.pid}`);
    const worker = spawnTracked({
      ...env,
      PGOFFLOAD_FAILPOINT: "before-merge:pause",
      PGOFFLOAD_FAILPOINT_RESUME: resumeFile,
    });
    const id = Number((await db.pool.query("SELECT offload.run($1) AS id", [table])).rows[0].id);
    await waitUntil(async () => worker.output().includes("failpoint before-merge:pause reached"), {
      context: worker.output,
    });
    // A session holding the table (as a long read does) from before the merge asks for it.
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query(`BEGIN; LOCK TABLE ONLY ${table} IN ACCESS SHARE MODE`);
      await writeFile(resumeFile, "");
      await waitUntil(async () => {
        const { rows } = await db.pool.query("SELECT last_error FROM offload.jobs WHERE id = $1", [
          id,
        ]);
        return /lock timeout/.test(rows[0].last_error ?? "");
      });
      expect(await committedSegments(table)).toBeGreaterThan(2);
    } finally {
      await holder.end();
      await rm(resumeFile, { force: true });
    }
    expect(await waitForJob(db.pool, id, 60_000)).toMatchObject({ state: "succeeded" });
    expect(await committedSegments(table)).toBeLessThanOrEqual(2);
    await expectEqualsControl(table);
    await worker.kill("SIGTERM");
  });
});
