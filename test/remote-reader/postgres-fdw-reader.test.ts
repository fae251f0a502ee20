import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningBridge } from "../../bridge/bridge.ts";
import {
  offloadNow,
  startTestBridge,
  testStoreConfig,
  waitForJob,
} from "../support/bridge-harness.ts";
import { fixture, resultSet, segmentTables } from "../support/fixtures.ts";
import { createTestDatabase, serverUrl, type TestDatabase } from "../support/test-database.ts";

// The second reader end to end: segment tables on postgres_fdw, read through the bridge's SQL
// endpoint, by a role that is not a superuser, against a table owner who tries to read more.
const QUERIES = [
  "SELECT * FROM awkward ORDER BY id",
  "SELECT count(*), max(created_at), min(created_at), sum(amount) FILTER (WHERE amount <> 'NaN') FROM awkward",
  "SELECT feeling, count(*), avg(tiny), string_agg(label, '|' ORDER BY id) FROM awkward GROUP BY feeling ORDER BY feeling",
  "SELECT id, doc->'a', texts[1], blob FROM awkward WHERE label LIKE '%\\%' OR doc ? 'nl' ORDER BY id",
  "SELECT a.id, b.id FROM awkward a JOIN awkward b ON b.id = a.id + 1 WHERE a.id % 97 = 0 ORDER BY a.id",
  "SELECT * FROM awkward WHERE id = 17",
  "SELECT * FROM awkward WHERE id BETWEEN 100 AND 140 AND label IS NOT NULL ORDER BY id",
  "SELECT * FROM awkward WHERE created_at < now() - interval '200 days' ORDER BY id",
];

const suffix = Math.random().toString(36).slice(2, 8);
const reader = `fdw_reader_${suffix}`;
const owner = `fdw_owner_${suffix}`;

describe("the postgres_fdw reader", () => {
  let db: TestDatabase;
  let bridge: RunningBridge;
  let cleanupStore: () => Promise<void>;
  const before = new Map<string, string[]>();
  const sessions: pg.Client[] = [];

  async function connectAs(role: string): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: db.url.replace(/\/\/[^@/]*@/, `//${role}@`),
    });
    await client.connect();
    sessions.push(client);
    return client;
  }

  beforeAll(async () => {
    db = await createTestDatabase("postgres-fdw-reader");
    const store = await testStoreConfig("local");
    cleanupStore = store.cleanup;
    bridge = await startTestBridge(db.url, store.config, {
      overrides: { segmentTargetBytes: 128 * 1024, chunkBytes: 16 * 1024 },
    });
    await db.pool.query(fixture("awkward-table.sql"));
    await db.pool.query("ANALYZE awkward");
    for (const sql of QUERIES) before.set(sql, await resultSet(db.pool, sql));
    await db.pool.query(`CREATE ROLE ${reader} LOGIN; GRANT SELECT ON awkward TO ${reader}`);
    await db.pool.query(
      `SELECT offload.define_policy('cold_30d', time_column => 'created_at',
         older_than => interval '30 days', zone_map_columns => '{id}', reader => 'postgres_fdw')`,
    );
    await db.pool.query("SELECT offload.attach_policy('public.awkward', 'cold_30d')");
    expect(await offloadNow(db.pool, "public.awkward")).toMatchObject({ state: "succeeded" });
  });

  afterAll(async () => {
    for (const client of sessions) await client.end();
    await bridge?.stop();
    await db?.drop();
    const admin = new pg.Client({ connectionString: serverUrl() });
    await admin.connect();
    for (const role of [reader, owner]) {
      await admin.query(`DROP ROLE IF EXISTS ${role}`).catch(() => {});
    }
    await admin.end();
    await cleanupStore?.();
  });

  it("makes postgres_fdw segment tables on the table's own server, with chunk bounds", async () => {
    const segments = await segmentTables(db.pool, "awkward");
    expect(segments.length).toBeGreaterThan(1);
    const { rows } = await db.pool.query(
      `SELECT DISTINCT w.fdwname, fs.srvname FROM pg_foreign_table ft
         JOIN pg_foreign_server fs ON fs.oid = ft.ftserver
         JOIN pg_foreign_data_wrapper w ON w.oid = fs.srvfdw
        WHERE ft.ftrelid = ANY ($1::regclass[])`,
      [segments],
    );
    expect(rows).toEqual([
      { fdwname: "postgres_fdw", srvname: expect.stringMatching(/^pg_offload_remote_\d+$/) },
    ]);
    const bounds = await db.pool.query(
      `SELECT count(*)::int AS chunks, count(*) FILTER (WHERE c.bounds ? '0')::int AS with_id
         FROM offload.chunks c JOIN offload.segments s ON s.id = c.segment_id
        WHERE s.table_id = 'awkward'::regclass`,
    );
    expect(bounds.rows[0].chunks).toBeGreaterThan(2);
    expect(bounds.rows[0].with_id).toBe(bounds.rows[0].chunks);
  });

  it("returns identical result sets, to a role that is not a superuser", async () => {
    const client = await connectAs(reader);
    for (const sql of QUERIES) {
      expect(await resultSet(client, sql), sql).toEqual(before.get(sql));
    }
  });

  it("keeps the login's password from roles that are not superusers", async () => {
    const client = await connectAs(reader);
    const { rows } = await client.query(
      "SELECT umoptions FROM pg_user_mappings WHERE srvname LIKE 'pg_offload_remote_%'",
    );
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(row.umoptions).toBeNull();
    await expect(
      client.query(
        `CREATE FOREIGN TABLE mine (id int) SERVER ${await serverOf("awkward")} OPTIONS (table_name 'x')`,
      ),
    ).rejects.toMatchObject({ code: "42501" });
  });

  it("serves a table's owner only that table's segments, whatever the options say", async () => {
    await db.pool.query(`CREATE ROLE ${owner} LOGIN`);
    await db.pool
      .query(`CREATE TABLE mine_too (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, v text);
      INSERT INTO mine_too SELECT i, now() - i * interval '1 hour', md5(i::text) FROM generate_series(1, 3000) i`);
    await db.pool.query(`ALTER TABLE mine_too OWNER TO ${owner}`);
    await db.pool.query("SELECT offload.attach_policy('public.mine_too', 'cold_30d')");
    expect(await offloadNow(db.pool, "public.mine_too")).toMatchObject({ state: "succeeded" });
    const [victim] = await segmentTables(db.pool, "awkward");
    const [own] = await segmentTables(db.pool, "mine_too");
    const { rows } = await db.pool.query(
      "SELECT option_value FROM pg_options_to_table((SELECT ftoptions FROM pg_foreign_table WHERE ftrelid = $1::regclass)) WHERE option_name = 'table_name'",
      [victim],
    );
    const client = await connectAs(owner);
    await client.query(
      `ALTER FOREIGN TABLE ${own} OPTIONS (SET table_name '${rows[0].option_value}')`,
    );
    await expect(client.query(`SELECT * FROM ${own}`)).rejects.toThrow(
      /not a segment of the table this server reads/,
    );
  });

  it("rewrites and loads back through the new reader", async () => {
    // delete_cold deletes cold rows only: hot rows with such ids stay.
    const kept =
      "SELECT * FROM awkward WHERE id % 5 <> 0 OR tableoid = 'awkward'::regclass ORDER BY id";
    const expected = await resultSet(db.pool, kept);
    const job = await db.pool.query(
      "SELECT offload.delete_cold('public.awkward', 'id % 5 = 0') AS id",
    );
    expect(await waitForJob(db.pool, Number(job.rows[0].id))).toMatchObject({ state: "succeeded" });
    expect(await resultSet(db.pool, "SELECT * FROM awkward ORDER BY id")).toEqual(expected);
    const rewritten = await db.pool.query(
      `SELECT count(*)::int AS n FROM offload.chunks c JOIN offload.segments s ON s.id = c.segment_id
        WHERE s.table_id = 'awkward'::regclass AND c.epoch = 2 AND c.bounds ? '0'`,
    );
    expect(rewritten.rows[0].n).toBeGreaterThan(0);
    await db.pool.query("SELECT offload.load_back('public.awkward')");
    expect(await segmentTables(db.pool, "awkward")).toEqual([]);
    expect(await resultSet(db.pool, "SELECT * FROM awkward ORDER BY id")).toEqual(expected);
  });

  it("reads exactly after RENAME COLUMN and ALTER COLUMN TYPE (the endpoint's kept shapes follow)", async () => {
    // The names of a and b are swapped, then b's type changes: columns kept from before would
    // read a's stored values as b (and b as an integer).
    await db.pool
      .query(`CREATE TABLE swapped (id int PRIMARY KEY, created_at timestamptz NOT NULL, a int, b int);
      INSERT INTO swapped SELECT i, now() - interval '400 days' + i * interval '1 hour', i, 100000 - i
        FROM generate_series(1, 5000) i;
      GRANT SELECT ON swapped TO ${reader}`);
    await db.pool.query(
      `SELECT offload.define_policy('cold_swap', time_column => 'created_at',
         older_than => interval '30 days', zone_map_columns => '{id}', reader => 'postgres_fdw')`,
    );
    await db.pool.query("SELECT offload.attach_policy('public.swapped', 'cold_swap')");
    expect(await offloadNow(db.pool, "public.swapped")).toMatchObject({ state: "succeeded" });
    const versions = async () =>
      (
        await db.pool.query<{ v: string }>(
          `SELECT offload.remote_segment_head(id, epoch) ->> 'version' AS v FROM offload.segments
            WHERE table_id = 'swapped'::regclass AND state = 'committed' ORDER BY id`,
        )
      ).rows.map((r) => r.v);
    const client = await connectAs(reader);
    const read = async (sql: string) => (await client.query({ text: sql, rowMode: "array" })).rows;
    const cold = await db.pool.query("SELECT count(*)::int AS n FROM ONLY swapped");
    expect(cold.rows[0].n).toBe(0);
    expect(await read("SELECT id, a, b FROM swapped WHERE a = 10")).toEqual([[10, 10, 99990]]);
    expect(await read("SELECT id, a, b FROM swapped WHERE b = 99990")).toEqual([[10, 10, 99990]]);
    const before = await versions();
    expect(before.length).toBeGreaterThan(0);

    await db.pool.query("ALTER TABLE swapped RENAME COLUMN a TO t");
    await db.pool.query("ALTER TABLE swapped RENAME COLUMN b TO a");
    await db.pool.query("ALTER TABLE swapped RENAME COLUMN t TO b");
    const renamed = await versions();
    renamed.forEach((v, i) => expect(v).not.toBe(before[i]));
    expect(await read("SELECT id, a, b FROM swapped WHERE a = 99990")).toEqual([[10, 99990, 10]]);
    expect(await read("SELECT id, a, b FROM swapped WHERE b = 10")).toEqual([[10, 99990, 10]]);
    expect(await read("SELECT count(*) FROM swapped WHERE a = 10")).toEqual([["0"]]);
    expect(await read("SELECT count(*) FROM swapped WHERE b BETWEEN 4990 AND 5010")).toEqual([
      ["11"],
    ]);

    await db.pool.query("ALTER TABLE swapped ALTER COLUMN b TYPE bigint");
    const retyped = await versions();
    retyped.forEach((v, i) => expect(v).not.toBe(renamed[i]));
    expect(await read("SELECT id, a, b, pg_typeof(b)::text FROM swapped WHERE b = 10")).toEqual([
      [10, 99990, "10", "bigint"],
    ]);
    expect(await read("SELECT count(*), sum(b) FROM swapped WHERE b >= 4990")).toEqual([
      ["11", "54945"],
    ]);
    // Unchanged columns: the version stays, and so does the kept shape.
    expect(await versions()).toEqual(retyped);
  });

  async function serverOf(table: string): Promise<string> {
    const { rows } = await db.pool.query(
      "SELECT server FROM offload.remote_readers WHERE table_id = $1::regclass",
      [table],
    );
    return rows[0].server;
  }
});
