import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

/** The error a statement raises, as { code, message, hint }. */
async function errorOf(db: TestDatabase, sql: string): Promise<Record<string, unknown>> {
  try {
    await db.pool.query(sql);
  } catch (error) {
    const e = error as { code: string; message: string; hint?: string };
    return { code: e.code, message: e.message, hint: e.hint };
  }
  throw new Error(`expected an error from: ${sql}`);
}

describe("definition-time validation in SQL", () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase("validation");
    await db.pool.query(`
      CREATE TABLE events (id bigint, created_at timestamptz, day date, n int, label text);
      CREATE TABLE parted (id int, at timestamptz) PARTITION BY RANGE (at);
      CREATE TABLE parted_2024 PARTITION OF parted FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
      CREATE TABLE listed (id int, created_at timestamptz) PARTITION BY LIST (id);
      CREATE TABLE parted_pk (id int, created_at timestamptz, PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at);
      CREATE TABLE parted2 (id int, at timestamptz, created_at timestamptz) PARTITION BY RANGE (at);
      CREATE TABLE multi (id int, at timestamptz) PARTITION BY RANGE (at);
      CREATE TABLE multi_2024 PARTITION OF multi FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY RANGE (at);
      CREATE TABLE with_json (created_at timestamptz, doc json);
      CREATE UNLOGGED TABLE scratch (at timestamptz);
      CREATE VIEW events_view AS SELECT * FROM events;
      CREATE TABLE no_n (created_at timestamptz);
      CREATE TABLE gen (at timestamptz, doubled int GENERATED ALWAYS AS (1 * 2) STORED);
      CREATE TABLE parent_ref (id int PRIMARY KEY, at timestamptz);
      CREATE TABLE child_ref (parent_id int REFERENCES parent_ref);
      CREATE TABLE "Odd ""Name""" ("When" timestamptz);
      CREATE ROLE alice LOGIN;
      GRANT CREATE ON SCHEMA public TO alice;
      SELECT offload.define_policy('p90', time_column => 'created_at', older_than => interval '90 days');
      SELECT offload.define_policy('by_id', time_column => 'n', keep_last => 1000);
      SELECT offload.define_policy('on_label', time_column => 'label', older_than => interval '1 day');
      SELECT offload.define_policy('on_missing', time_column => 'nope', older_than => interval '1 day');
      SELECT offload.define_policy('p_at', time_column => 'at', older_than => interval '1 day');
      SELECT offload.define_policy('zone_missing', 'created_at', interval '1 day', zone_map_columns => '{nope}');
      SELECT offload.define_policy('zone_json', 'created_at', interval '1 day', zone_map_columns => '{doc}');
    `);
  });

  afterAll(async () => {
    await db?.pool.query("DROP OWNED BY alice; DROP ROLE alice").catch(() => {});
    await db?.drop();
  });

  it.each([
    [
      "a zero interval",
      "SELECT offload.define_policy('x', 'created_at', interval '0')",
      "22023",
      /older_than must be a positive interval/,
    ],
    [
      "a negative interval",
      "SELECT offload.define_policy('x', 'created_at', interval '-3 days')",
      "22023",
      /positive interval, got -3 days/,
    ],
    [
      "no rule",
      "SELECT offload.define_policy('x', 'created_at')",
      "22023",
      /exactly one of older_than/,
    ],
    [
      "both rules",
      "SELECT offload.define_policy('x', 'created_at', interval '1 day', 5)",
      "22023",
      /exactly one of older_than/,
    ],
    [
      "a non-positive keep_last",
      "SELECT offload.define_policy('x', 'n', keep_last => 0)",
      "22023",
      /keep_last must be positive/,
    ],
    [
      "an empty name",
      "SELECT offload.define_policy('', 'created_at', interval '1 day')",
      "22023",
      /needs a name/,
    ],
    [
      "a duplicate name",
      "SELECT offload.define_policy('p90', 'created_at', interval '1 day')",
      "42710",
      /policy "p90" already exists/,
    ],
    [
      "a negative idle_for",
      "SELECT offload.define_policy('x', 'created_at', idle_for => interval '-1 hour')",
      "22023",
      /idle_for must be a positive interval/,
    ],
    [
      "a negative keep_hot_bytes",
      "SELECT offload.define_policy('x', 'created_at', keep_hot_bytes => -1)",
      "22023",
      /keep_hot_bytes must be zero or more/,
    ],
    [
      "two rules",
      "SELECT offload.define_policy('x', 'created_at', idle_for => interval '1 day', keep_hot_bytes => 10)",
      "22023",
      /exactly one of/,
    ],
    [
      "a tiny segment size",
      "SELECT offload.define_policy('x', 'created_at', interval '1 day', segment_bytes => 100)",
      "22023",
      /segment_bytes must be at least 65536/,
    ],
    [
      "a chunk size out of range",
      "SELECT offload.define_policy('x', 'created_at', interval '1 day', chunk_bytes => 1000000000)",
      "22023",
      /chunk_bytes must be between 4096/,
    ],
    [
      "a compression level out of range",
      "SELECT offload.define_policy('x', 'created_at', interval '1 day', compression_level => 23)",
      "22023",
      /compression_level must be between 0 \(none\) and 22/,
    ],
    [
      "an empty zone-map column",
      "SELECT offload.define_policy('x', 'created_at', interval '1 day', zone_map_columns => '{\"\"}')",
      "22023",
      /zone_map_columns of policy "x" has an empty name/,
    ],
    [
      "a bad interval literal",
      "SELECT offload.define_policy('x', 'created_at', interval '90 dayz')",
      "22007",
      /invalid input syntax for type interval/,
    ],
  ])("define_policy rejects %s", async (_what, sql, code, message) => {
    const error = await errorOf(db, sql);
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
  });

  it.each([
    [
      "an unknown table",
      "SELECT offload.attach_policy('no_such_table', 'p90')",
      "42P01",
      /relation "no_such_table" does not exist/,
    ],
    [
      "an unknown policy",
      "SELECT offload.attach_policy('events', 'nope')",
      "42704",
      /policy "nope" does not exist/,
    ],
    [
      "an unknown column",
      "SELECT offload.attach_policy('events', 'on_missing')",
      "42703",
      /column "nope" of policy "on_missing" does not exist in table public.events/,
    ],
    [
      "a text column",
      "SELECT offload.attach_policy('events', 'on_label')",
      "42804",
      /column "label" of table public.events has type text/,
    ],
    [
      "a policy column the table lacks",
      "SELECT offload.attach_policy('no_n', 'by_id')",
      "42703",
      /column "n"/,
    ],
    [
      "a LIST-partitioned table",
      "SELECT offload.attach_policy('listed', 'p90')",
      "0A000",
      /public.listed is LIST partitioned; only RANGE partitioning is supported/,
    ],
    [
      "a partitioned table with a unique index",
      "SELECT offload.attach_policy('parted_pk', 'p90')",
      "0A000",
      /has unique index public.parted_pk_pkey/,
    ],
    [
      "multi-level partitioning",
      "SELECT offload.attach_policy('multi', 'p_at')",
      "0A000",
      /sub-partitioned partition public.multi_2024; multi-level partitioning is not supported/,
    ],
    [
      "a policy column a partitioned table lacks",
      "SELECT offload.attach_policy('parted', 'p90')",
      "42703",
      /column "created_at" of policy "p90" does not exist in table public.parted/,
    ],
    [
      "a partitioned table and a policy on another column",
      "SELECT offload.attach_policy('parted2', 'p90')",
      "22023",
      /public.parted2 is partitioned by "at", but policy "p90" uses column "created_at"/,
    ],
    [
      "a zone-map column the table lacks",
      "SELECT offload.attach_policy('events', 'zone_missing')",
      "42703",
      /zone-map column "nope" of policy "zone_missing" does not exist in table public.events/,
    ],
    [
      "a zone-map column without an ordering",
      "SELECT offload.attach_policy('with_json', 'zone_json')",
      "42804",
      /zone-map column "doc" of table public.with_json has type json, which has no ordering/,
    ],
    [
      "a partition",
      "SELECT offload.attach_policy('parted_2024', 'p90')",
      "0A000",
      /public.parted_2024 is a partition; attach the policy to its partitioned table public.parted/,
    ],
    [
      "an unlogged table",
      "SELECT offload.attach_policy('scratch', 'p90')",
      "0A000",
      /public.scratch is unlogged/,
    ],
    [
      "a view",
      "SELECT offload.attach_policy('events_view', 'p90')",
      "42809",
      /public.events_view is not a table \(it is a view\)/,
    ],
    [
      "generated columns",
      "SELECT offload.attach_policy('gen', 'p90')",
      "0A000",
      /generated columns/,
    ],
    [
      "a table referenced by foreign keys",
      "SELECT offload.attach_policy('parent_ref', 'p90')",
      "0A000",
      /referenced by foreign keys from public.child_ref/,
    ],
  ])("attach_policy rejects %s", async (_what, sql, code, message) => {
    const error = await errorOf(db, sql);
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
  });

  it("rejects a policy whose rule does not fit the column type, with a hint", async () => {
    await db.pool.query("SELECT offload.define_policy('p_on_n', 'n', interval '1 day')");
    const error = await errorOf(db, "SELECT offload.attach_policy('events', 'p_on_n')");
    expect(error).toMatchObject({ code: "42804", hint: expect.stringMatching(/keep_last/) });
    await db.pool.query("SELECT offload.define_policy('k_on_time', 'created_at', keep_last => 5)");
    const reverse = await errorOf(db, "SELECT offload.attach_policy('events', 'k_on_time')");
    expect(reverse).toMatchObject({ code: "42804", hint: expect.stringMatching(/older_than/) });
    expect(reverse.message).toMatch(
      /column "created_at" of table public.events has type timestamp with time zone; policy "k_on_time" \(keep_last\)/,
    );
    const text = await errorOf(db, "SELECT offload.attach_policy('events', 'on_label')");
    expect(text.hint).toMatch(/Supported key types/);
  });

  it("rejects a temporary table", async () => {
    const client = await db.pool.connect();
    try {
      await client.query("CREATE TEMP TABLE temp_events (created_at timestamptz)");
      await expect(
        client.query("SELECT offload.attach_policy('temp_events', 'p90')"),
      ).rejects.toMatchObject({
        code: "0A000",
        message: expect.stringMatching(/is temporary/),
      });
    } finally {
      client.release();
    }
  });

  it("rejects a table the caller does not own, and leaves nothing behind", async () => {
    const client = await db.pool.connect();
    try {
      await client.query("SET ROLE alice");
      await expect(
        client.query("SELECT offload.attach_policy('events', 'p90')"),
      ).rejects.toMatchObject({
        code: "42501",
        message: expect.stringMatching(/must be owner of table public.events/),
      });
      await expect(client.query("SELECT offload.run('events')")).rejects.toMatchObject({
        code: "42501",
      });
      // Row-level security stops a direct write to the catalog too.
      await expect(
        client.query(
          "INSERT INTO offload.attachments VALUES ('events', 'p90', 'created_at', 'timestamptz')",
        ),
      ).rejects.toMatchObject({ code: "42501" });
    } finally {
      await client.query("RESET ROLE");
      client.release();
    }
    const { rows } = await db.pool.query(
      "SELECT count(*)::int AS n FROM offload.attachments WHERE table_id = 'events'::regclass",
    );
    expect(rows[0].n).toBe(0);
  });

  it("lets a non-superuser owner attach and run on their own table", async () => {
    const client = await db.pool.connect();
    try {
      await client.query("SET ROLE alice");
      await client.query("CREATE TABLE alice_events (at date)");
      await client.query("SELECT offload.define_policy('alice_p', 'at', interval '7 days')");
      await client.query("SELECT offload.attach_policy('alice_events', 'alice_p')");
      const { rows } = await client.query("SELECT offload.run('alice_events') AS job");
      expect(Number(rows[0].job)).toBeGreaterThan(0);
      const again = await client.query("SELECT offload.run('alice_events') AS job");
      expect(again.rows[0].job).toBe(rows[0].job);
    } finally {
      await client.query("RESET ROLE");
      client.release();
    }
  });

  it("accepts quoted, mixed-case names", async () => {
    await db.pool.query(`SELECT offload.define_policy('odd', 'When', interval '1 day')`);
    await db.pool.query(`SELECT offload.attach_policy('"Odd ""Name"""', 'odd')`);
    const { rows } = await db.pool.query(
      "SELECT table_id::text AS t FROM offload.attachments WHERE policy_name = 'odd'",
    );
    expect(rows[0].t).toBe('"Odd ""Name"""');
  });

  it("refuses a second policy on one table and a run without a policy", async () => {
    // A table of this case's own: the other cases attach to events and expect other refusals.
    await db.pool.query("CREATE TABLE events_twice (LIKE events)");
    await db.pool.query("SELECT offload.attach_policy('events_twice', 'p90')");
    expect(await errorOf(db, "SELECT offload.attach_policy('events_twice', 'p90')")).toMatchObject({
      code: "42710",
      message: expect.stringMatching(/already has a policy/),
    });
    expect(await errorOf(db, "SELECT offload.run('scratch')")).toMatchObject({ code: "0A000" });
    await db.pool.query("CREATE TABLE bare (at timestamptz)");
    expect(await errorOf(db, "SELECT offload.run('bare')")).toMatchObject({
      code: "42704",
      message: expect.stringMatching(/public.bare has no policy attached/),
    });
    expect(await errorOf(db, "SELECT offload.drop_policy('p90')")).toMatchObject({
      code: "2BP01",
      message: expect.stringMatching(/attached to public.events_twice/),
    });
  });
});
