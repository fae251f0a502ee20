import { readFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { RunningBridge } from "../../bridge/bridge.ts";
import { collectGarbage } from "../../bridge/garbage-collector.ts";
import {
  offloadNow,
  startTestBridge,
  testStoreConfig,
  waitForJob,
} from "../support/bridge-harness.ts";
import { fixture, resultSet, segmentTables } from "../support/fixtures.ts";
import { createEmptyDatabase, type TestDatabase } from "../support/test-database.ts";

// The managed profile (README, "On managed PostgreSQL"): no superuser anywhere. The provider's
// superuser does only what a managed service does for its admin role (RDS's rds_superuser, Cloud
// SQL's cloudsqlsuperuser, Azure's azure_pg_admin): it creates the allowlisted extension
// postgres_fdw and hands the admin role the rights it lists. From there the admin role (not a
// superuser) sets up the bridge's role, which installs the schema and does all the work.
const suffix = Math.random().toString(36).slice(2, 8);
const admin = `managed_admin_${suffix}`;
const bridgeRole = `managed_bridge_${suffix}`;
const owner = `managed_owner_${suffix}`;
const readerRole = `managed_reader_${suffix}`;

const QUERIES = [
  "SELECT * FROM awkward ORDER BY id",
  "SELECT count(*), max(created_at), min(created_at), sum(amount) FILTER (WHERE amount <> 'NaN') FROM awkward",
  "SELECT * FROM awkward WHERE id BETWEEN 100 AND 140 AND label IS NOT NULL ORDER BY id",
  "SELECT * FROM awkward WHERE created_at < now() - interval '200 days' ORDER BY id",
];

// The bridge's role deletes moved rows with session_replication_role = replica, a setting only
// superusers may change before PostgreSQL 15 brought GRANT SET ON PARAMETER.
const SERVER_MAJOR = Number(readFileSync(join(inject("postgres").dataDir, "PG_VERSION"), "utf8"));
if (SERVER_MAJOR < 15)
  console.warn(
    "skipped: the managed profile: needs PostgreSQL 15 or newer (GRANT SET ON PARAMETER)",
  );

describe.skipIf(SERVER_MAJOR < 15)("the managed profile: no superuser", () => {
  let db: TestDatabase;
  let bridge: RunningBridge | undefined;
  let cleanupStore: () => Promise<void>;
  const sessions: pg.Client[] = [];
  const before = new Map<string, string[]>();

  async function connectAs(role: string): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: urlAs(role) });
    await client.connect();
    sessions.push(client);
    return client;
  }
  const urlAs = (role: string) => db.url.replace(/\/\/[^@/]*@/, `//${role}@`);

  beforeAll(async () => {
    db = await createEmptyDatabase("managed-profile");
    // What the service's superuser does, once, for its admin role.
    await db.pool.query(`
      CREATE ROLE ${admin} LOGIN CREATEROLE;
      CREATE EXTENSION postgres_fdw;
      GRANT CREATE ON DATABASE ${db.name} TO ${admin} WITH GRANT OPTION;
      GRANT USAGE ON FOREIGN DATA WRAPPER postgres_fdw TO ${admin} WITH GRANT OPTION;
      GRANT SET ON PARAMETER session_replication_role TO ${admin} WITH GRANT OPTION;`);
    // The admin role: the bridge's role, and a table owner whose tables it may offload.
    const asAdmin = await connectAs(admin);
    await asAdmin.query(`DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'offload_admin') THEN
          CREATE ROLE offload_admin NOLOGIN;
        END IF;
      END $$`);
    await asAdmin.query(`
      CREATE ROLE ${bridgeRole} LOGIN;
      GRANT CREATE ON DATABASE ${db.name} TO ${bridgeRole};
      GRANT USAGE ON FOREIGN DATA WRAPPER postgres_fdw TO ${bridgeRole};
      GRANT SET ON PARAMETER session_replication_role TO ${bridgeRole};
      CREATE ROLE ${owner} LOGIN;
      GRANT ${owner} TO ${bridgeRole};
      CREATE ROLE ${readerRole} LOGIN;`);
    const store = await testStoreConfig("local");
    cleanupStore = store.cleanup;
    bridge = await startTestBridge(urlAs(bridgeRole), store.config, {
      overrides: { segmentTargetBytes: 128 * 1024, chunkBytes: 16 * 1024 },
    });
    const asOwner = await connectAs(owner);
    await db.pool.query(`GRANT CREATE ON SCHEMA public TO ${owner}`);
    await asOwner.query(fixture("awkward-table.sql"));
    await asOwner.query(`ANALYZE awkward; GRANT SELECT ON awkward TO ${readerRole}`);
    for (const sql of QUERIES) before.set(sql, await resultSet(asOwner, sql));
  });

  afterAll(async () => {
    for (const client of sessions) await client.end();
    await bridge?.stop();
    await db?.drop();
    const su = new pg.Client({ connectionString: db.url.replace(/\/[^/]*$/, "/postgres") });
    await su.connect();
    for (const role of [readerRole, `${owner}_x`, owner, bridgeRole, admin]) {
      await su.query(`DROP ROLE IF EXISTS ${role}`).catch(() => {});
    }
    await su.end();
    await cleanupStore?.();
  });

  it("installs without file_fdw or event triggers", async () => {
    const { rows } = await db.pool.query(
      `SELECT (SELECT count(*)::int FROM pg_extension WHERE extname = 'file_fdw') AS file_fdw,
              (SELECT count(*)::int FROM pg_event_trigger) AS event_triggers,
              (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'offload') AS owner`,
    );
    expect(rows[0]).toEqual({ file_fdw: 0, event_triggers: 0, owner: bridgeRole });
  });

  it("offloads through postgres_fdw and reads back identical result sets", async () => {
    const asOwner = await connectAs(owner);
    await asOwner.query(
      `SELECT offload.define_policy('cold_30d', time_column => 'created_at', older_than => interval '30 days',
         segment_tables => 2)`,
    );
    await asOwner.query("SELECT offload.attach_policy('public.awkward', 'cold_30d')");
    expect(await offloadNow(db.pool, "public.awkward")).toMatchObject({
      state: "succeeded",
      last_error: null,
    });
    // Its segments were merged by the bridge's role too: the tests below read, rewrite, follow
    // and load back merged segments.
    const tables = await segmentTables(db.pool, "awkward");
    expect(tables.length).toBeGreaterThan(0);
    expect(tables.length).toBeLessThanOrEqual(2);
    const { rows } = await db.pool.query(
      "SELECT count(*)::int AS n FROM offload.segments WHERE merged_into IS NOT NULL",
    );
    expect(rows[0].n).toBeGreaterThan(1);
    const reader = await connectAs(readerRole);
    for (const sql of QUERIES) expect(await resultSet(reader, sql), sql).toEqual(before.get(sql));
  });

  it("refuses to attach a policy to a table whose owner the bridge's role is not a member of", async () => {
    const stranger = `${owner}_x`;
    await db.pool.query(
      `CREATE ROLE ${stranger} LOGIN; GRANT CREATE ON SCHEMA public TO ${stranger}`,
    );
    try {
      const asStranger = await connectAs(stranger);
      await asStranger.query("CREATE TABLE theirs (id bigint, created_at timestamptz NOT NULL)");
      await expect(
        asStranger.query("SELECT offload.attach_policy('theirs', 'cold_30d')"),
      ).rejects.toMatchObject({
        code: "42501",
        message: expect.stringContaining(
          `the bridge's role ${bridgeRole} is not a member of ${stranger}`,
        ),
        hint: expect.stringContaining(`GRANT ${stranger} TO ${bridgeRole}`),
      });
      await asStranger.query("DROP TABLE theirs");
    } finally {
      await db.pool.query(`REVOKE CREATE ON SCHEMA public FROM ${stranger}`);
    }
  });

  async function runJob(client: pg.Client, sql: string): Promise<void> {
    const { rows } = await client.query(sql);
    const job = await waitForJob(db.pool, Number(Object.values(rows[0])[0]));
    expect(job, sql).toMatchObject({ state: "succeeded", last_error: null });
  }

  it("rewrites cold rows (delete_cold, update_cold) and verifies them, as the owner asks", async () => {
    const asOwner = await connectAs(owner);
    // Hot rows stay as they are; cold ones are deleted or updated.
    const expected = await resultSet(
      asOwner,
      `SELECT id, label FROM ONLY awkward
       UNION ALL
       SELECT id, CASE WHEN id % 50 = 3 THEN 'redacted' ELSE label END FROM awkward
        WHERE tableoid <> 'awkward'::regclass AND id % 50 <> 1
       ORDER BY id`,
    );
    await runJob(asOwner, "SELECT offload.delete_cold('awkward', 'id % 50 = 1')");
    await runJob(
      asOwner,
      `SELECT offload.update_cold('awkward', '{"label": "''redacted''"}', 'id % 50 = 3')`,
    );
    const reader = await connectAs(readerRole);
    expect(await resultSet(reader, "SELECT id, label FROM awkward ORDER BY id")).toEqual(expected);
    const verified = await asOwner.query(
      "SELECT bool_and(ok) AS ok, count(*)::int AS n FROM offload.verify('awkward')",
    );
    expect(verified.rows[0]).toMatchObject({ ok: true });
    expect(verified.rows[0].n).toBeGreaterThan(0);
  });

  it("without event triggers, refuses reads of a table altered since, until its owner follows the change", async () => {
    const asOwner = await connectAs(owner);
    const reader = await connectAs(readerRole);
    const sql = "SELECT id, short, extra FROM awkward ORDER BY id";
    const expected = await resultSet(asOwner, "SELECT id, short, 'xy' FROM awkward ORDER BY id");
    await asOwner.query("ALTER TABLE awkward RENAME COLUMN label TO title");
    await asOwner.query("ALTER TABLE awkward ADD COLUMN extra text DEFAULT 'x' || 'y'");
    await expect(reader.query("SELECT count(title) FROM awkward")).rejects.toThrow(
      /altered since pg-offload last followed its columns/,
    );
    const asReader = reader.query("SELECT offload.follow_changes('awkward')");
    await expect(asReader).rejects.toMatchObject({ code: "42501" });
    await asOwner.query("SELECT offload.follow_changes('awkward')");
    expect(await resultSet(reader, sql)).toEqual(expected);
    const titles = await resultSet(
      reader,
      "SELECT id, title FROM awkward WHERE id % 50 = 3 AND tableoid <> 'awkward'::regclass ORDER BY id",
    );
    expect(titles.every((row) => row.includes("redacted"))).toBe(true);
  });

  it("offloads a partitioned table's old partitions, reads them, and loads them back", async () => {
    const asOwner = await connectAs(owner);
    await asOwner.query(fixture("partitioned-table.sql"));
    await asOwner.query(`GRANT SELECT ON metrics TO ${readerRole}`);
    const sql = "SELECT * FROM metrics ORDER BY id";
    const expected = await resultSet(asOwner, sql);
    await asOwner.query(
      "SELECT offload.define_policy('cold_60d', 'created_at', interval '60 days', zone_map_columns => '{id}')",
    );
    await asOwner.query("SELECT offload.attach_policy('metrics', 'cold_60d')");
    expect(await offloadNow(db.pool, "metrics")).toMatchObject({
      state: "succeeded",
      last_error: null,
    });
    const cold = await db.pool.query(
      "SELECT count(*)::int AS n FROM offload.segments WHERE table_id = 'metrics'::regclass AND state = 'committed'",
    );
    expect(cold.rows[0].n).toBeGreaterThan(0);
    const reader = await connectAs(readerRole);
    expect(await resultSet(reader, sql)).toEqual(expected);
    await asOwner.query("SELECT offload.load_back('metrics')");
    expect(await resultSet(reader, sql)).toEqual(expected);
    const after = await db.pool.query(
      "SELECT count(*)::int AS n FROM offload.segments WHERE table_id = 'metrics'::regclass AND state = 'committed'",
    );
    expect(after.rows[0].n).toBe(0);
  });

  it("loads the rows back, and retires the segments of a dropped table at garbage collection", async () => {
    const asOwner = await connectAs(owner);
    const before = await resultSet(asOwner, "SELECT * FROM awkward ORDER BY id");
    await asOwner.query("SELECT offload.load_back('awkward')");
    expect(await segmentTables(db.pool, "awkward")).toEqual([]);
    expect(await resultSet(asOwner, "SELECT * FROM only awkward ORDER BY id")).toEqual(before);
    expect(await offloadNow(db.pool, "public.awkward")).toMatchObject({ state: "succeeded" });
    await asOwner.query("DROP TABLE awkward CASCADE");
    const { rows } = await db.pool.query(
      "SELECT count(*)::int AS n FROM offload.segments WHERE state = 'committed'",
    );
    expect(rows[0].n).toBeGreaterThan(0);
    // Garbage collection as the bridge's role: retired, then their objects deleted.
    const installation = await db.pool.query("SELECT offload.current_installation() AS id");
    const report = await collectGarbage(bridge!.db, bridge!.store, installation.rows[0].id, {
      graceMs: 0,
      leaseMs: 1_000,
      dryRun: false,
    });
    expect(report.deleted).toBeGreaterThan(0);
    const after = await db.pool.query(
      "SELECT count(*)::int AS n FROM offload.segments WHERE state = 'committed'",
    );
    expect(after.rows[0].n).toBe(0);
  });
});
