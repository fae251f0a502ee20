import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningBridge } from "../bridge/bridge.ts";
import {
  offloadNow,
  startTestBridge,
  testStoreConfig,
  waitForJob,
} from "./support/bridge-harness.ts";
import { tableDigest } from "./support/digest.ts";
import { createTestDatabase, serverUrl, type TestDatabase } from "./support/test-database.ts";

// Roles belong to the whole cluster, which other test files share: names of this run's own.
const tag = Math.random().toString(36).slice(2, 8);
const alice = `alice_${tag}`;
const bob = `bob_${tag}`;
const carol = `carol_${tag}`; // a member of offload_admin

function schemaSql(owner: string): string {
  return `
    CREATE SCHEMA ${owner} AUTHORIZATION ${owner};
    GRANT USAGE ON SCHEMA ${owner} TO PUBLIC;
    CREATE TABLE ${owner}.seen_as (who name, during text);
    ALTER TABLE ${owner}.seen_as OWNER TO ${owner};`;
}

/** 2000 rows an hour apart, the oldest 1280 or so due under cold_30d; owned by `owner`. */
function tableSql(owner: string, table: string): string {
  return `
    CREATE TABLE ${owner}.${table} (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, v text);
    INSERT INTO ${owner}.${table}
      SELECT i, now() - (2000 - i) * interval '1 hour', md5(i::text) FROM generate_series(1, 2000) i;
    ALTER TABLE ${owner}.${table} OWNER TO ${owner};`;
}

describe("privileges", () => {
  let db: TestDatabase;
  let bridge: RunningBridge;
  let cleanupStore: () => Promise<void>;
  const sessions = new Map<string, pg.Client>();

  async function as(role: string, sql: string, params: unknown[] = []) {
    let client = sessions.get(role);
    if (!client) {
      client = new pg.Client({
        connectionString: db.url.replace(/\/\/[^@/]*@/, `//${role}@`),
        options: "-c search_path=public", // table names print schema-qualified
      });
      await client.connect();
      sessions.set(role, client);
    }
    return client.query(sql, params);
  }

  async function errorAs(role: string, sql: string) {
    return as(role, sql).then(
      () => undefined,
      (error: { code?: string; message: string }) => ({ code: error.code, message: error.message }),
    );
  }

  beforeAll(async () => {
    db = await createTestDatabase("privileges");
    const store = await testStoreConfig("local");
    cleanupStore = store.cleanup;
    bridge = await startTestBridge(db.url, store.config);
    for (const role of [alice, bob, carol]) await db.pool.query(`CREATE ROLE ${role} LOGIN`);
    await db.pool.query(`GRANT offload_admin TO ${carol}`);
    for (const owner of [alice, bob]) await db.pool.query(schemaSql(owner));
    await db.pool.query(
      "SELECT offload.define_policy('cold_30d', time_column => 'created_at', older_than => '30 days')",
    );
    // alice.events and bob.events, attached and offloaded: catalog rows of every kind for the
    // catalog case to read. No case changes them; a case that changes a table makes its own.
    for (const owner of [alice, bob]) {
      await db.pool.query(tableSql(owner, "events"));
      await db.pool.query(`SELECT offload.attach_policy('${owner}.events', 'cold_30d')`);
      expect((await offloadNow(db.pool, `${owner}.events`)).state).toBe("succeeded");
    }
  });

  afterAll(async () => {
    for (const client of sessions.values()) await client.end();
    await bridge?.stop();
    await db?.drop();
    const admin = new pg.Client({ connectionString: serverUrl() });
    await admin.connect();
    try {
      for (const role of [alice, bob, carol]) {
        await admin.query(`DROP ROLE IF EXISTS ${role}`).catch((error: { code?: string }) => {
          // 2BP01: the role owns objects in the database kept because a test failed (see
          // test/support/test-database.ts); it goes with the run's server.
          if (error.code !== "2BP01") throw error;
        });
      }
    } finally {
      await admin.end();
    }
    await cleanupStore?.();
  });

  it("only the owner or an offload_admin member attaches, runs, rewrites, loads back", async () => {
    const table = `${alice}.guarded`;
    const own = `${bob}.guarded`;
    await db.pool.query(tableSql(alice, "guarded") + tableSql(bob, "guarded"));
    for (const sql of [
      `SELECT offload.attach_policy('${table}', 'cold_30d')`,
      `SELECT offload.run('${table}')`,
      `SELECT offload.detach_policy('${table}')`,
      `SELECT offload.delete_cold('${table}', 'id = 1')`,
      `SELECT offload.update_cold('${table}', '{"v": "NULL"}', 'id = 1')`,
      `SELECT offload.load_back('${table}')`,
      `SELECT offload.truncate('${table}')`,
    ]) {
      expect(await errorAs(bob, sql), sql).toMatchObject({
        code: "42501",
        message: expect.stringContaining(`must be owner of table ${table}`),
      });
    }
    // The catalog refuses a job queued around the functions, or in another role's name.
    const oid = (await db.pool.query(`SELECT '${table}'::regclass::oid AS oid`)).rows[0].oid;
    expect(await errorAs(bob, `INSERT INTO offload.jobs (table_id) VALUES (${oid})`)).toMatchObject(
      { code: "42501", message: expect.stringContaining("row-level security") },
    );
    expect(
      await errorAs(
        bob,
        `INSERT INTO offload.jobs (table_id, requested_by) VALUES ('${own}', 'postgres')`,
      ),
    ).toMatchObject({ code: "42501", message: expect.stringContaining("row-level security") });

    await as(carol, `SELECT offload.attach_policy('${table}', 'cold_30d')`);
    const { rows } = await as(carol, `SELECT offload.run('${table}') AS id`);
    expect((await waitForJob(db.pool, Number(rows[0].id))).state).toBe("succeeded");
    await as(bob, `SELECT offload.attach_policy('${own}', 'cold_30d')`);
    expect((await offloadNow(db.pool, own)).state).toBe("succeeded");
  });

  it("users see the catalog rows of their own tables only", async () => {
    const catalog = [
      "SELECT DISTINCT table_id::text AS t FROM offload.attachments ORDER BY 1",
      "SELECT DISTINCT table_id::text AS t FROM offload.jobs ORDER BY 1",
      "SELECT DISTINCT table_id::text AS t FROM offload.segments ORDER BY 1",
      "SELECT DISTINCT s.table_id::text AS t FROM offload.chunks c JOIN offload.segments s ON s.id = c.segment_id ORDER BY 1",
      "SELECT DISTINCT table_name::text AS t FROM offload.tables ORDER BY 1",
    ];
    // Besides alice.events and bob.events (beforeAll), the tables other cases have attached or
    // offloaded by now, if any: what each user must see is what the superuser sees, cut down to
    // the tables the user owns.
    const ownedBy = async (role: string) => {
      const { rows } = await db.pool.query(
        "SELECT oid::regclass::text AS t FROM pg_class WHERE relowner = $1::regrole",
        [role],
      );
      return new Set(rows.map((r) => r.t));
    };
    const aliceOwns = await ownedBy(alice);
    const bobOwns = await ownedBy(bob);
    for (const sql of catalog) {
      const all: string[] = (await db.pool.query(sql)).rows.map((r) => r.t);
      expect(all, sql).toEqual(expect.arrayContaining([`${alice}.events`, `${bob}.events`]));
      expect(
        (await as(bob, sql)).rows.map((r) => r.t),
        sql,
      ).toEqual(all.filter((t) => bobOwns.has(t)));
      expect(
        (await as(alice, sql)).rows.map((r) => r.t),
        sql,
      ).toEqual(all.filter((t) => aliceOwns.has(t)));
      expect(
        (await as(carol, sql)).rows.map((r) => r.t),
        sql,
      ).toEqual(all);
    }
    const chunks = await as(bob, "SELECT count(*)::int AS n FROM offload.chunks");
    const ownChunks = await db.pool.query(
      `SELECT count(*)::int AS n FROM offload.chunks c JOIN offload.segments s ON s.id = c.segment_id
         JOIN pg_class t ON t.oid = s.table_id WHERE t.relowner = $1::regrole`,
      [bob],
    );
    expect(chunks.rows[0].n).toBe(ownChunks.rows[0].n);
    expect(await errorAs(bob, "SELECT * FROM offload.installation")).toMatchObject({
      code: "42501",
    });
    // The owner still reads their cold rows, and nobody else's.
    expect((await as(bob, `SELECT count(*)::int AS n FROM ${bob}.events`)).rows[0].n).toBe(2000);
    expect(await errorAs(bob, `SELECT count(*) FROM ${alice}.events`)).toMatchObject({
      code: "42501",
    });
  });

  it("an offload_admin member rewrites another's table with PostgreSQL's privileges for the same DML, reading it as its owner", async () => {
    const table = `${alice}.rewritten`;
    await db.pool.query(tableSql(alice, "rewritten"));
    await db.pool.query(`SELECT offload.attach_policy('${table}', 'cold_30d')`);
    expect((await offloadNow(db.pool, table)).state).toBe("succeeded");
    const hot = await db.pool.query(`SELECT count(*)::int AS n FROM ONLY ${table} WHERE id = 1`);
    expect(hot.rows[0].n).toBe(0); // row 1 is cold: what delete_cold below must reach
    // Without DELETE on the table, as a DELETE would need: refused at the call.
    expect(await errorAs(carol, `SELECT offload.delete_cold('${table}', 'id = 1')`)).toMatchObject({
      code: "42501",
      message: expect.stringContaining("needs SELECT and DELETE"),
    });
    // Granted: the job runs, the condition as carol, the segment read as alice (who owns it,
    // and whom a domain's CHECK on a column belongs to).
    await as(alice, `GRANT SELECT, DELETE ON ${table} TO ${carol}`);
    await as(
      alice,
      `CREATE FUNCTION ${alice}.reader() RETURNS boolean LANGUAGE sql AS $$ SELECT current_user = '${alice}' $$;
       CREATE DOMAIN ${alice}.read_by_owner AS text CHECK (${alice}.reader());
       ALTER TABLE ${table} ADD COLUMN d ${alice}.read_by_owner`,
    );
    const condition = `id = 1 AND current_user = '${carol}'`;
    const { rows } = await as(carol, `SELECT offload.delete_cold($1, $2) AS id`, [
      table,
      condition,
    ]);
    expect(await waitForJob(db.pool, Number(rows[0].id))).toMatchObject({
      state: "succeeded",
      rows_done: "1",
    });
    const left = await db.pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE id = 1`);
    expect(left.rows[0].n).toBe(0);
  });

  it("every SECURITY DEFINER function, and every other one, pins its search_path", async () => {
    const { rows } = await db.pool.query(
      `SELECT p.oid::regprocedure::text AS f, p.prosecdef AS definer
         FROM pg_proc p
        WHERE p.pronamespace = 'offload'::regnamespace
          AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)`,
    );
    expect(rows).toEqual([]);
  });

  // Moving rows out fires none of the table's triggers, not even those enabled ALWAYS (they used
  // to, under the bridge's pinned search_path, where this one failed the offload).
  it("an ENABLE ALWAYS delete trigger, even one naming a table without its schema, does not fire", async () => {
    const table = `${bob}.audited`;
    await as(
      bob,
      `CREATE TABLE ${table} (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, v text);
       INSERT INTO ${table}
         SELECT i, now() - (2000 - i) * interval '1 hour' - interval '100 days', md5(i::text)
           FROM generate_series(1, 2000) i;
       CREATE FUNCTION ${bob}.on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN INSERT INTO seen_as VALUES (current_user, 'offload delete'); RETURN OLD; END $$;
       CREATE TRIGGER unqualified BEFORE DELETE ON ${table}
         FOR EACH ROW EXECUTE FUNCTION ${bob}.on_delete();
       ALTER TABLE ${table} ENABLE ALWAYS TRIGGER unqualified;
       SELECT offload.attach_policy('${table}', 'cold_30d');`,
    );
    const digest = await tableDigest(db.pool, table);
    const job = await offloadNow(db.pool, table);
    expect(job).toMatchObject({ state: "succeeded", last_error: null });
    const hot = await db.pool.query(`SELECT count(*)::int AS n FROM ONLY ${table}`);
    expect(hot.rows[0].n).toBe(0);
    const seen = await db.pool.query(`SELECT count(*)::int AS n FROM ${bob}.seen_as`);
    expect(seen.rows[0].n).toBe(0);
    expect(await tableDigest(db.pool, table)).toBe(digest);
  });
});
