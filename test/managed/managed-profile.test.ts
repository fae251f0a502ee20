import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningBridge } from "../../bridge/bridge.ts";
import { offloadNow, startTestBridge, testStoreConfig } from "../support/bridge-harness.ts";
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

describe("the managed profile: no superuser", () => {
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
    for (const role of [readerRole, owner, bridgeRole, admin]) {
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
      `SELECT offload.define_policy('cold_30d', time_column => 'created_at', older_than => interval '30 days')`,
    );
    await asOwner.query("SELECT offload.attach_policy('public.awkward', 'cold_30d')");
    expect(await offloadNow(db.pool, "public.awkward")).toMatchObject({
      state: "succeeded",
      last_error: null,
    });
    expect((await segmentTables(db.pool, "awkward")).length).toBeGreaterThan(0);
    const reader = await connectAs(readerRole);
    for (const sql of QUERIES) expect(await resultSet(reader, sql), sql).toEqual(before.get(sql));
  });
});
