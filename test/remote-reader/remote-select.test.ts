// The remote reader's SELECT: answers from chunks of COPY text must equal PostgreSQL's answers on
// the table itself, under postgres_fdw's session settings; hostile statements are refused before
// anything runs.
import { parse } from "libpg-query";
import pg from "pg";
import { to as copyTo } from "pg-copy-streams";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ColdReadError, type RemoteSelect } from "../../bridge/remote-reader/cold-data.ts";
import { RemoteSelectRunner, type ScanStats } from "../../bridge/remote-reader/remote-select.ts";
import type {
  ChunkSource,
  SegmentCatalog,
  SegmentChunk,
  SegmentShape,
} from "../../bridge/remote-reader/segment-source.ts";
import { generateQuery, forTable, type GeneratorContext } from "../differential/query-generator.ts";
import { fixture } from "../support/fixtures.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";

const ROWS_PER_CHUNK = 250;
/** The bridge's session (bridge/db.ts): how chunks and bounds are written. */
const BRIDGE_OPTIONS =
  "-c DateStyle=ISO,YMD -c TimeZone=UTC -c IntervalStyle=postgres -c extra_float_digits=1 -c bytea_output=hex -c search_path=pg_catalog,pg_temp";
/** postgres_fdw's session settings. */
const FDW_SETTINGS = new Map([
  ["search_path", "pg_catalog"],
  ["timezone", "GMT"],
  ["datestyle", "ISO"],
  ["intervalstyle", "postgres"],
  ["extra_float_digits", "3"],
]);
const RAW = { getTypeParser: () => (v: string) => v };
/** Columns of the fixture PostgreSQL has min() and max() for: the ones with bounds. */
const BOUNDED = [
  "id",
  "created_at",
  "day",
  "local_ts",
  "label",
  "short",
  "fixed",
  "amount",
  "ratio",
  "small_real",
  "tiny",
  "ints",
  "texts",
  "feeling",
  "count",
  "span",
  "addr",
  "at_time",
  "at_timetz",
  "watched",
];

let db: TestDatabase;
let bridgePool: pg.Pool;
let shape: SegmentShape;
let tableOid: number;
const chunkText = new Map<number, Buffer>();
let fetched: number[] = [];
let lastStats: ScanStats | undefined;
let runner: RemoteSelectRunner;

const catalog: SegmentCatalog = {
  async segmentOf(oid, relation) {
    if (oid !== tableOid) throw new ColdReadError("not this table", "42501");
    if (
      relation.schema === "public" &&
      ["awkward", "awkward_seg2", 'Awkward "Seg" 3'].includes(relation.name)
    )
      return shape;
    if (relation.schema === "public" && relation.name === "other_segment")
      throw new ColdReadError(`${relation.name} is not a segment of public.awkward`, "42501");
    throw new ColdReadError(`relation ${relation.schema}.${relation.name} does not exist`, "42P01");
  },
};

const source: ChunkSource = {
  async fetch(_shape, seq) {
    fetched.push(seq);
    return chunkText.get(seq)!;
  },
};

async function remoteSelect(sql: string, params: Array<string | null> = []): Promise<RemoteSelect> {
  const parsed = (await parse(sql)) as { stmts: Array<{ stmt: unknown }> };
  expect(parsed.stmts).toHaveLength(1);
  return { sql, tree: parsed.stmts[0]!.stmt, params, paramTypes: params.map(() => 0) };
}

/** The runner's rows, as JSON text per row. */
async function cold(sql: string, params: Array<string | null> = [], r = runner): Promise<string[]> {
  fetched = [];
  const result = await r.select(
    { table: "public.awkward", tableOid },
    await remoteSelect(sql, params),
    FDW_SETTINGS,
    new AbortController().signal,
  );
  const rows: string[] = [];
  for await (const row of result.rows) rows.push(JSON.stringify(row));
  return rows;
}

/** PostgreSQL's rows on the table itself, in postgres_fdw's session. */
async function hot(sql: string, params: Array<string | null> = []): Promise<string[]> {
  const client = await db.pool.connect();
  try {
    await client.query("BEGIN");
    await client.query(
      "SET LOCAL search_path = pg_catalog; SET LOCAL timezone = 'GMT'; SET LOCAL datestyle = 'ISO'; SET LOCAL intervalstyle = 'postgres'; SET LOCAL extra_float_digits = 3",
    );
    const reference = sql
      .replaceAll("public.awkward_seg2", "public.awkward")
      .replaceAll('public."Awkward ""Seg"" 3"', "public.awkward");
    const { rows } = await client.query({
      text: reference,
      values: params,
      rowMode: "array",
      types: RAW,
    });
    return (rows as unknown[][]).map((r) => JSON.stringify(r));
  } finally {
    await client.query("ROLLBACK");
    client.release();
  }
}

async function expectSame(sql: string, params: Array<string | null> = [], ordered = false) {
  const expected = await hot(sql, params);
  const actual = await cold(sql, params);
  if (ordered) expect(actual).toEqual(expected);
  else expect([...actual].sort()).toEqual([...expected].sort());
}

async function refusal(sql: string, params: Array<string | null> = []): Promise<ColdReadError> {
  try {
    await cold(sql, params);
  } catch (error) {
    expect(error).toBeInstanceOf(ColdReadError);
    return error as ColdReadError;
  }
  throw new Error(`not refused: ${sql}`);
}

beforeAll(async () => {
  db = await createTestDatabase("remote-select");
  await db.pool.query(fixture("awkward-table.sql"));
  // A domain whose CHECK runs the owner's function, which records who called it.
  await db.pool.query(`
    CREATE TABLE public.calls (who text, at timestamptz DEFAULT clock_timestamp());
    CREATE FUNCTION public.record_caller(v integer) RETURNS boolean LANGUAGE plpgsql AS
      $$ BEGIN INSERT INTO public.calls (who) VALUES (current_user); RETURN v IS NULL OR v > 0; END $$;
    CREATE DOMAIN public.watched_int AS integer CHECK (public.record_caller(VALUE));
    CREATE TYPE public.pair AS (a integer, b text);
    ALTER TABLE awkward ADD COLUMN watched public.watched_int, ADD COLUMN pr public.pair;
    UPDATE awkward SET watched = CASE WHEN id % 3 = 0 THEN NULL ELSE id END,
                       pr = CASE WHEN id % 5 = 0 THEN NULL ELSE ROW(id, E'x\\ty' || id)::public.pair END;
    TRUNCATE public.calls;
    ANALYZE awkward;`);
  tableOid = Number((await db.pool.query("SELECT 'public.awkward'::regclass::oid AS o")).rows[0].o);
  bridgePool = new pg.Pool({ connectionString: db.url, options: BRIDGE_OPTIONS, max: 4 });
  bridgePool.on("error", () => {});

  const { rows: columns } = await bridgePool.query(`
    SELECT a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
           CASE WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod)
                ELSE pg_catalog.format_type(a.atttypid, a.atttypmod) END AS "decodeAs",
           CASE WHEN a.attcollation <> t.typcollation THEN pg_catalog.quote_ident(c.collname) END AS collation,
           t.typtype NOT IN ('c') AS decodable
      FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
      LEFT JOIN pg_collation c ON c.oid = a.attcollation
     WHERE a.attrelid = 'public.awkward'::regclass AND a.attnum > 0 AND NOT a.attisdropped
     ORDER BY a.attnum`);

  const client = await bridgePool.connect();
  let text: string;
  try {
    const stream = client.query(
      copyTo("COPY (SELECT * FROM public.awkward ORDER BY id) TO STDOUT"),
    );
    const parts: Buffer[] = [];
    for await (const part of stream) parts.push(part as Buffer);
    text = Buffer.concat(parts).toString("utf8");
  } finally {
    client.release();
  }
  const lines = text.split("\n").slice(0, -1);
  const bounds = BOUNDED.map(
    (c) =>
      `pg_catalog.min(${c}), pg_catalog.max(${c}), pg_catalog.count(*) - pg_catalog.count(${c})`,
  ).join(", ");
  const { rows: stats } = await bridgePool.query({
    text: `SELECT (row_number() OVER (ORDER BY id) - 1) / ${ROWS_PER_CHUNK} AS seq, * FROM public.awkward ORDER BY id`,
    rowMode: "array",
    types: RAW,
  });
  void stats;
  const { rows: chunkStats } = await bridgePool.query({
    text: `SELECT seq, ${bounds} FROM (SELECT (pg_catalog.row_number() OVER (ORDER BY id) - 1) / ${ROWS_PER_CHUNK} AS seq, * FROM public.awkward) s GROUP BY seq ORDER BY seq`,
    rowMode: "array",
    types: RAW,
  });
  const chunks: SegmentChunk[] = [];
  for (const row of chunkStats as string[][]) {
    const seq = Number(row[0]);
    const body = lines.slice(seq * ROWS_PER_CHUNK, (seq + 1) * ROWS_PER_CHUNK).join("\n") + "\n";
    const buf = Buffer.from(body, "utf8");
    chunkText.set(seq, buf);
    const b: Record<string, [string, string]> = {};
    const nulls: Record<string, number> = {};
    BOUNDED.forEach((c, i) => {
      const [mn, mx, nl] = [row[1 + 3 * i], row[2 + 3 * i], row[3 + 3 * i]];
      if (mn !== null && mn !== undefined) b[c] = [mn, mx!];
      nulls[c] = Number(nl);
    });
    const rowsInChunk = Math.min(ROWS_PER_CHUNK, lines.length - seq * ROWS_PER_CHUNK);
    chunks.push({ seq, rows: rowsInChunk, rawBytes: buf.length, bounds: b, nulls });
  }
  shape = {
    segment: 1,
    epoch: 1,
    table: "public.awkward",
    columns,
    chunks,
    rows: lines.length,
    rawBytes: chunks.reduce((n, c) => n + c.rawBytes, 0),
  };
  runner = new RemoteSelectRunner(bridgePool, catalog, source, {
    batchRows: 700,
    observer: (s) => (lastStats = s),
  });
});

afterAll(async () => {
  await bridgePool?.end();
  await db?.drop();
});

describe("remote SELECT answers as PostgreSQL would", () => {
  it("has a shape with several chunks and bounds", () => {
    expect(shape.chunks.length).toBeGreaterThan(5);
    expect(shape.columns.find((c) => c.name === "watched")!.decodeAs).toBe("integer");
    expect(shape.columns.find((c) => c.name === "pr")!.decodable).toBe(false);
  });

  it.each([
    "SELECT id, created_at, day, local_ts, label, short, fixed, amount, ratio, small_real, tiny, flag, blob, doc, raw_json, ints, texts, feeling, count, uid, span, addr, at_time, at_timetz, pt, rng, bits, watched, pr FROM public.awkward",
    "SELECT NULL FROM public.awkward",
    "SELECT id, NULL, label FROM public.awkward WHERE ((id >= 100::bigint)) AND ((id < 200::bigint))",
    "SELECT id, label FROM public.awkward WHERE ((label = E'tab\\there'::text))",
    "SELECT id, pr FROM public.awkward WHERE ((id % 7) = 3)",
    "SELECT r1.id, r1.created_at FROM public.awkward r1 WHERE ((r1.created_at < '2000-01-01 00:00:00+00'::timestamp with time zone))",
    "SELECT id, amount FROM public.awkward WHERE ((amount = 'NaN'::numeric))",
    "SELECT id, ratio, small_real FROM public.awkward WHERE ((ratio > 0::double precision)) OR (small_real IS NULL)",
    "SELECT id FROM public.awkward WHERE ((id = ANY ('{1,2,3,2999,4000}'::bigint[])))",
    "SELECT id, feeling FROM public.awkward WHERE ((feeling = 'happy'::public.mood))",
    "SELECT id, label FROM public.awkward WHERE ((label COLLATE \"C\" < 'plain'::text)) AND label IS NOT NULL",
    "SELECT id, doc FROM public.awkward WHERE ((doc ? 'nl'::text))",
    "SELECT id, watched, count FROM public.awkward WHERE ((watched > 2900)) OR ((count BETWEEN 5 AND 9))",
    "SELECT id, texts FROM public.awkward WHERE ((texts[1] = 'a,b'::text))",
    "SELECT id FROM public.awkward WHERE (upper(rng) > 100) AND (NOT flag)",
    "SELECT id, day FROM public.awkward WHERE day IS NULL",
    "SELECT id, blob FROM public.awkward WHERE ((length(blob) = 16)) AND id BETWEEN 10 AND 40",
    "SELECT id, at_timetz, span FROM public.awkward WHERE span > '1 day'::interval",
  ])("%s", async (sql) => {
    await expectSame(sql);
  });

  it.each<[string, Array<string | null>]>([
    ["SELECT id, label FROM public.awkward WHERE ((id = $1::bigint))", ["17"]],
    ["SELECT id, label FROM public.awkward WHERE ((id = $1::bigint))", [null]],
    [
      "SELECT id FROM public.awkward WHERE ((created_at >= $1::timestamp with time zone))",
      ["2000-01-01 00:00:00+00"],
    ],
    ["SELECT id, label FROM public.awkward WHERE ((label = $1))", ["tab\there"]],
    [
      "SELECT id FROM public.awkward WHERE ((id = ANY ($1::bigint[]))) AND ((tiny > $2::smallint))",
      ["{5,50,500}", "10"],
    ],
    [
      "SELECT id, feeling FROM public.awkward WHERE ((feeling = $1::public.mood))",
      ['it\'s "complicated"'],
    ],
    [
      "SELECT id FROM public.awkward WHERE ((id BETWEEN $1::bigint AND $2::bigint))",
      ["500", "520"],
    ],
  ])("with parameters: %s %j", async (sql, params) => {
    await expectSame(sql, params);
  });

  it.each([
    [
      "SELECT id, label FROM public.awkward ORDER BY label ASC NULLS LAST, id ASC NULLS LAST LIMIT 20::bigint",
      true,
    ],
    [
      "SELECT id, ratio FROM public.awkward WHERE id < 900 ORDER BY ratio DESC NULLS FIRST, id LIMIT 10 OFFSET 3",
      true,
    ],
    [
      'SELECT feeling, count(*), sum(amount), avg(tiny), min(label COLLATE "C") FROM public.awkward GROUP BY 1',
      false,
    ],
    [
      "SELECT tiny % 5, count(id), max(created_at) FROM public.awkward WHERE flag GROUP BY 1 HAVING ((count(id) > 5))",
      false,
    ],
    ["SELECT count(*), sum(watched) FROM public.awkward", false],
    [
      "SELECT r1.id, r2.label FROM (public.awkward r1 INNER JOIN public.awkward_seg2 r2 ON (((r1.id + 1) = r2.id))) WHERE ((r1.id % 97) = 0)",
      false,
    ],
    [
      "SELECT s.c1, s.c2 FROM (SELECT feeling, count(*) FROM public.awkward GROUP BY 1) s(c1, c2)",
      false,
    ],
    ["SELECT DISTINCT fixed FROM public.awkward", false],
  ] as const)("shape %s", async (sql, ordered) => {
    await expectSame(sql, [], ordered);
  });

  it("generated WHERE clauses (the differential tester's generator)", async () => {
    const samples: Record<string, string[]> = {};
    for (const c of [
      "id",
      "label",
      "amount",
      "day",
      "created_at",
      "local_ts",
      "feeling",
      "ints",
      "texts",
      "tiny",
      "ratio",
      "short",
      "doc",
      "span",
      "addr",
    ]) {
      const { rows } = await db.pool.query(
        `SELECT DISTINCT ${c}::text AS v FROM awkward WHERE ${c} IS NOT NULL ORDER BY 1 LIMIT 40`,
      );
      samples[c] = rows.map((r: { v: string }) => r.v);
    }
    const ctx: GeneratorContext = { samples, collations: ["C"] };
    const columnList = shape.columns
      .filter((c) => c.decodable)
      .map((c) => `t."${c.name}"`)
      .join(", ");
    let compared = 0;
    const refused: Record<string, number> = {};
    const failures: string[] = [];
    for (let i = 0; i < 300; i++) {
      const q = generateQuery(4242, i, ctx);
      if (q.kind !== "filter" && q.kind !== "ordered" && q.kind !== "aggregate") continue;
      const sql = forTable(q, "public.awkward").replaceAll("t.*", columnList);
      let expected: string[];
      try {
        expected = await hot(sql);
      } catch {
        continue;
      }
      let actual: string[];
      try {
        actual = await cold(sql);
      } catch (error) {
        if (!(error instanceof ColdReadError)) throw error;
        refused[error.sqlState] = (refused[error.sqlState] ?? 0) + 1;
        if (!["42501", "0A000"].includes(error.sqlState)) failures.push(`${sql}: ${error.message}`);
        if (process.env.SHOW_REFUSED && error.sqlState === "0A000")
          console.log(
            `refused ${error.sqlState} ${error.message}\n  ${sql}\n  ${String((error.cause as { sql?: string } | undefined)?.sql)}`,
          );
        continue;
      }
      compared++;
      const same = q.ordered
        ? JSON.stringify(actual) === JSON.stringify(expected)
        : JSON.stringify([...actual].sort()) === JSON.stringify([...expected].sort());
      if (!same) failures.push(`${sql}: ${actual.length} rows vs ${expected.length}`);
    }
    console.log(`generated: ${compared} compared, refused ${JSON.stringify(refused)}`);
    expect(failures).toEqual([]);
    expect(compared).toBeGreaterThan(40);
  });
});

describe("the evaluation keeps the statement's own text", () => {
  it.each([
    // A quoted "bit" is bit without a typmod (any length); a deparsed bare bit would be bit(1).
    `SELECT id, bits FROM public.awkward WHERE (((bits & B'0000000000000101'::"bit") = B'0000000000000101'::"bit"))`,
    `SELECT r1.id, r1.bits FROM public.awkward r1 WHERE ((r1.bits::"bit" <> B'01'::"bit"))`,
    `SELECT id, label FROM public.awkward WHERE ((substr(label, 1, 1)::"char" = 'u'::"char"))`,
    `SELECT id, bits FROM public.awkward WHERE ((bits = B'0000000000000001'::bit varying))`,
    `SELECT id, bits FROM public.awkward WHERE ((bits > B'0000000000000001'::bit varying(16)))`,
    `SELECT id, amount FROM public.awkward WHERE ((amount = ANY ('{NaN,1,-0.000000000000000000001,2.5}'::numeric[])))`,
    `SELECT 'żółć 日本語 🎉'::text, id, label FROM public.awkward WHERE ((label = 'unicode: żółć 日本語 🎉 4'::text))`,
    `SELECT r1.id, r1.label FROM public.awkward r1 WHERE ((r1.label >= 'unicode: żółć 日本語 🎉'::text)) AND ((r1.label < 'unicode: żółć 日本語 🎉 9'::text))`,
    `SELECT id, 'żółć 🎉' AS "a ""quoted"" name", label FROM public.awkward WHERE ((label ~~ 'unicode: %'::text)) ORDER BY id LIMIT 5`,
    `SELECT id, label FROM public."Awkward ""Seg"" 3" WHERE ((label = 'unicode: żółć 日本語 🎉 4'::text))`,
    `SELECT r1.id, r1."label" FROM public."Awkward ""Seg"" 3" r1 WHERE ((r1.id < 30))`,
    `SELECT r1.id, r2.label FROM (public.awkward r1 INNER JOIN public."Awkward ""Seg"" 3" r2 ON (((r1.id = r2.id)) AND ((r2.label ~~ 'unicode: żółć%'::text)))) WHERE ((r1.bits & B'0000000000000001'::"bit") = B'0000000000000001'::"bit")`,
    `SELECT r1.id, r2.id FROM (public.awkward r1 LEFT JOIN public.awkward_seg2 r2 ON (((r1.id = (r2.id - 1))) AND ((r2.fixed = 'ab'::bpchar)))) WHERE ((r1.id < 50))`,
    // The simple shape with an undecodable column (pr is a composite type): NULL in the evaluation.
    `SELECT id, pr, label FROM public.awkward WHERE ((label = 'unicode: żółć 日本語 🎉 4'::text))`,
    `SELECT r1.pr, r1.id FROM public.awkward r1 WHERE ((r1.id < 40))`,
    `SELECT id, "pr" FROM public."Awkward ""Seg"" 3" WHERE ((id = ANY ('{1,5,9}'::bigint[])))`,
  ])("%s", async (sql) => {
    await expectSame(sql);
  });

  it("inside DECLARE ... CURSOR FOR (the text the endpoint passes, locations into it)", async () => {
    const select = `SELECT r1.id, r1.pr, r1.bits FROM public."Awkward ""Seg"" 3" r1 WHERE ((r1.label = 'unicode: żółć 日本語 🎉 4'::text)) OR (((r1.bits & B'0000000000000001'::"bit") = B'0000000000000001'::"bit"))`;
    const sql = `DECLARE c1 CURSOR FOR\n${select}`;
    const parsed = (await parse(sql)) as {
      stmts: Array<{ stmt: { DeclareCursorStmt: { query: { SelectStmt: unknown } } } }>;
    };
    const query: RemoteSelect = {
      sql,
      tree: parsed.stmts[0]!.stmt.DeclareCursorStmt.query.SelectStmt,
      params: [],
      paramTypes: [],
    };
    const result = await runner.select(
      { table: "public.awkward", tableOid },
      query,
      FDW_SETTINGS,
      new AbortController().signal,
    );
    const rows: string[] = [];
    for await (const row of result.rows) rows.push(JSON.stringify(row));
    expect(rows.sort()).toEqual((await hot(select)).sort());
    expect(rows.length).toBeGreaterThan(100);
  });

  it("with TABLESAMPLE, an alias and a unicode literal", async () => {
    const all = new Set(await hot("SELECT r1.id, r1.pr, NULL FROM public.awkward r1"));
    const rows = await cold(
      `SELECT r1.id, r1.pr, NULL FROM public."Awkward ""Seg"" 3" r1 TABLESAMPLE bernoulli (50.000000) WHERE ((r1.label <> 'żółć 🎉'::text)) OR (r1.label IS NULL)`,
    );
    expect(rows.length).toBeGreaterThan(1000);
    expect(rows.length).toBeLessThan(2000);
    for (const row of rows) expect(all.has(row)).toBe(true);
  });
});

describe("parameters typed in the Parse message", () => {
  async function typed(sql: string, params: string[], types: string[]) {
    const { rows } = await db.pool.query<{ oid: number }>(
      "SELECT t::regtype::oid::int AS oid FROM unnest($1::text[]) WITH ORDINALITY AS a(t, i) ORDER BY i",
      [types],
    );
    const query = { ...(await remoteSelect(sql, params)), paramTypes: rows.map((r) => r.oid) };
    const result = await runner.select(
      { table: "public.awkward", tableOid },
      query,
      FDW_SETTINGS,
      new AbortController().signal,
    );
    const out: string[] = [];
    for await (const row of result.rows) out.push(JSON.stringify(row));
    return out;
  }

  it("are read as their type", async () => {
    const actual = await typed(
      "SELECT id FROM public.awkward WHERE id = $1 OR label = $2",
      ["42", "tab\there"],
      ["bigint", "text"],
    );
    const expected = await hot(
      "SELECT id FROM public.awkward WHERE id = $1::bigint OR label = $2::text",
      ["42", "tab\there"],
    );
    expect(actual.sort()).toEqual(expected.sort());
    expect(actual.length).toBeGreaterThan(1);
  });

  it("a domain type is refused", async () => {
    const error = await typed(
      "SELECT id FROM public.awkward WHERE id = $1",
      ["5"],
      ["public.watched_int"],
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ColdReadError);
    expect((error as ColdReadError).message).toMatch(/domain/);
    expect((await db.pool.query("SELECT count(*)::int AS n FROM public.calls")).rows[0].n).toBe(0);
  });
});

describe("data skipping", () => {
  it("a point lookup by the key fetches one chunk", async () => {
    await expectSame("SELECT id, label FROM public.awkward WHERE ((id = 1234::bigint))");
    expect(fetched).toEqual([Math.floor(1233 / ROWS_PER_CHUNK)]);
    expect(lastStats).toMatchObject({ chunksFetched: 1, chunksSkipped: shape.chunks.length - 1 });
  });

  it("a parameterized range fetches the chunks it spans", async () => {
    await expectSame(
      "SELECT id FROM public.awkward WHERE ((id >= $1::bigint)) AND ((id <= $2::bigint))",
      ["240", "260"],
    );
    expect(fetched).toEqual([0, 1]);
  });

  it("ANY, reversed operands and IS NULL", async () => {
    await expectSame("SELECT id FROM public.awkward WHERE ((id = ANY ('{3,2800}'::bigint[])))");
    expect(fetched).toEqual([0, 11]);
    await expectSame("SELECT id FROM public.awkward WHERE ((2990 < id))");
    expect(fetched).toEqual([11]);
    await expectSame("SELECT id FROM public.awkward WHERE ((id < 10)) AND (day IS NULL)");
    expect(fetched).toEqual([0]);
  });

  it("chunks the statistics prove wholly matching are returned as stored", async () => {
    await expectSame(
      "SELECT id, label, pr, created_at, ratio FROM public.awkward WHERE ((id >= 100::bigint)) AND ((id < $1::bigint))",
      ["2000"],
    );
    // Chunks 1 to 6 (ids 251 to 1750) lie wholly inside; 0 and 7 are evaluated.
    expect(fetched).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(lastStats).toMatchObject({ chunksAsStored: 6, chunksFetched: 8 });
    // Another conjunct: nothing is proven.
    await expectSame(
      "SELECT id FROM public.awkward WHERE ((id >= 100::bigint)) AND ((id % 2) = 0)",
    );
    expect(lastStats).toMatchObject({ chunksAsStored: 0 });
    // A column with NULLs in every chunk is never proven.
    await expectSame("SELECT id FROM public.awkward WHERE ((tiny >= 0))");
    expect(lastStats).toMatchObject({ chunksAsStored: 0 });
  });

  it("a condition of another form excludes nothing", async () => {
    await expectSame("SELECT id FROM public.awkward WHERE ((id + 0) = 1234)");
    expect(fetched).toHaveLength(shape.chunks.length);
  });

  it("estimates and sizes", async () => {
    const table = { table: "public.awkward", tableOid };
    const point = await runner.estimate(
      table,
      await remoteSelect("SELECT id FROM public.awkward WHERE id = 5"),
    );
    const all = await runner.estimate(table, await remoteSelect("SELECT id FROM public.awkward"));
    expect(all.rows).toBe(shape.rows);
    expect(point.rows).toBeLessThan(ROWS_PER_CHUNK);
    expect(point.totalCost).toBeLessThan(all.totalCost);
    expect(await runner.relationSize(table, { schema: "public", name: "awkward" })).toEqual({
      rows: shape.rows,
      bytes: shape.rawBytes,
    });
  });

  it("refuses a non-streaming shape over the raw-bytes cap", async () => {
    const small = new RemoteSelectRunner(bridgePool, catalog, source, { maxRawBytes: 200_000 });
    const error = await cold("SELECT id FROM public.awkward ORDER BY id LIMIT 1", [], small).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ColdReadError);
    expect((error as ColdReadError).sqlState).toBe("54000");
    // A point lookup stays under it.
    expect(
      await cold("SELECT id FROM public.awkward WHERE id = 7 ORDER BY id LIMIT 1", [], small),
    ).toEqual(['["7"]']);
  });
});

describe("streaming", () => {
  it("evaluates large chunks in batches", async () => {
    const small = new RemoteSelectRunner(bridgePool, catalog, source, { batchRows: 37 });
    const sql =
      "SELECT id, pr, NULL, label FROM public.awkward WHERE ((id % 3) = 1) OR (label IS NULL)";
    const actual = await cold(sql, [], small);
    expect(actual.sort()).toEqual((await hot(sql)).sort());
  });

  it("reads chunks as rows are pulled, and stops when told", async () => {
    const controller = new AbortController();
    fetched = [];
    const result = await runner.select(
      { table: "public.awkward", tableOid },
      await remoteSelect("SELECT id FROM public.awkward WHERE ((id % 2) = 0)"),
      FDW_SETTINGS,
      controller.signal,
    );
    const iterator = result.rows[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toEqual(["2"]);
    expect(fetched.length).toBeLessThanOrEqual(2);
    controller.abort();
    let error: unknown;
    try {
      for (;;) if ((await iterator.next()).done) break;
    } catch (e) {
      error = e;
    }
    expect((error as ColdReadError).sqlState).toBe("57014");
    expect(fetched.length).toBeLessThanOrEqual(3);
    expect(result.columns).toEqual([{ name: "id", typeOid: 20 }]);
  });
});

describe("ANALYZE's sample", () => {
  it("TABLESAMPLE BERNOULLI returns about that share of the rows, each a real row", async () => {
    const all = new Set(await hot("SELECT id, label FROM public.awkward"));
    const rows = await cold(
      "SELECT id, label FROM public.awkward TABLESAMPLE BERNOULLI(30.000000)",
    );
    expect(rows.length).toBeGreaterThan(600);
    expect(rows.length).toBeLessThan(1200);
    for (const row of rows) expect(all.has(row)).toBe(true);
  });

  it("TABLESAMPLE SYSTEM samples whole chunks without fetching the others", async () => {
    const rows = await cold("SELECT id FROM public.awkward TABLESAMPLE SYSTEM(50)");
    expect(rows.length).toBe(fetched.reduce((n, seq) => n + shape.chunks[seq]!.rows, 0));
    expect(await cold("SELECT id FROM public.awkward TABLESAMPLE SYSTEM(0)")).toEqual([]);
    expect(fetched).toEqual([]);
  });

  it("is refused elsewhere than a plain scan", async () => {
    const error = await refusal("SELECT count(*) FROM public.awkward TABLESAMPLE BERNOULLI(10)");
    expect(error.message).toMatch(/TABLESAMPLE/);
    const repeatable = await refusal(
      "SELECT id FROM public.awkward TABLESAMPLE BERNOULLI(10) REPEATABLE (1)",
    );
    expect(repeatable.message).toMatch(/TABLESAMPLE/);
  });
});

describe("hostile statements are refused before anything runs", () => {
  it.each<[string, string, RegExp]>([
    [
      "SELECT id FROM public.awkward WHERE set_config('role', 'postgres', false) IS NOT NULL",
      "42501",
      /set_config/,
    ],
    ["SELECT pg_catalog.pg_read_file('/etc/passwd') FROM public.awkward", "42501", /pg_read_file/],
    ["SELECT id FROM public.awkward WHERE pg_sleep(10) IS NULL", "42501", /pg_sleep/],
    ["SELECT id FROM public.awkward WHERE id IN (SELECT 1 FROM offload.jobs)", "0A000", /subquer/],
    ["SELECT id FROM public.awkward WHERE EXISTS (SELECT FROM pg_authid)", "0A000", /subquer/],
    ["SELECT r.rolname FROM pg_catalog.pg_authid r", "42P01", /pg_authid/],
    ["SELECT id FROM public.awkward UNION SELECT oid FROM pg_catalog.pg_class", "0A000", /UNION/],
    ["SELECT id FROM public.awkward WHERE id = 5::public.watched_int", "42501", /domain/],
    ["SELECT id FROM public.other_segment", "42501", /other_segment/],
    ["SELECT id FROM public.awkward FOR UPDATE", "0A000", /FOR UPDATE/],
    ["WITH x AS (SELECT 1) SELECT id FROM public.awkward", "0A000", /WITH/],
    ["SELECT id FROM public.awkward WHERE public.record_caller(id)", "42501", /schema public/],
    ["SELECT id FROM public.awkward WHERE id OPERATOR(public.=) 5", "42501", /operators of schema/],
    ["SELECT 'pg_authid'::regclass::oid FROM public.awkward", "42501", /regclass/],
    ["SELECT id FROM public.awkward WHERE (pr).a = 5", "0A000", /.+/],
    ["SELECT id FROM public.awkward WHERE pr IS NULL", "0A000", /pr/],
    ["SELECT now() FROM public.awkward", "42501", /now/],
    [
      "SELECT id FROM public.awkward WHERE ts_rewrite('a'::tsquery, 'SELECT 1') IS NULL",
      "42501",
      /ts_rewrite/,
    ],
    ["SELECT generate_series(1, 1000000000) FROM public.awkward", "42501", /generate_series/],
    ["SELECT id FROM public.awkward r1 JOIN LATERAL (SELECT 1) s ON true", "0A000", /.+/],
    ["SELECT id FROM public.awkward WHERE id = $3", "08P01", /\$3/],
    ["SELECT row_number() OVER () FROM public.awkward", "0A000", /over/],
    ["SELECT x.pr FROM public.awkward r1", "42P01", /"x"/],
    ["SELECT x.id FROM public.awkward r1", "42P01", /"x"/],
  ])("%s", async (sql, code, message) => {
    const error = await refusal(sql);
    expect(error.sqlState).toBe(code);
    expect(error.message).toMatch(message);
  });

  it("a second statement (; DROP) or another statement kind is refused", async () => {
    const table = { table: "public.awkward", tableOid };
    for (const sql of [
      "SELECT id FROM public.awkward; DROP TABLE public.awkward",
      "DROP TABLE public.awkward",
    ]) {
      const parsed = (await parse(sql)) as { stmts: Array<{ stmt: unknown }> };
      const tree = parsed.stmts.length === 1 ? parsed.stmts[0]!.stmt : parsed;
      const error = await runner
        .select(
          table,
          { sql, tree, params: [], paramTypes: [] },
          FDW_SETTINGS,
          new AbortController().signal,
        )
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ColdReadError);
      expect((error as ColdReadError).sqlState).toBe("0A000");
    }
    expect((await db.pool.query("SELECT count(*)::int AS n FROM awkward")).rows[0].n).toBe(3000);
  });

  it("a column type with a cast through the owner's function is never decoded", async () => {
    await db.pool.query(`
      CREATE FUNCTION public.mood_from_text(t text) RETURNS public.mood LANGUAGE plpgsql AS
        $$ BEGIN INSERT INTO public.calls (who) VALUES (current_user); RETURN enum_first(NULL::public.mood); END $$;
      CREATE CAST (text AS public.mood) WITH FUNCTION public.mood_from_text(text)`);
    try {
      const error = await refusal(
        "SELECT id, feeling FROM public.awkward WHERE ((feeling = 'ok'::public.mood))",
      );
      expect(error.sqlState).toBe("0A000");
      expect(error.message).toMatch(/mood/);
    } finally {
      await db.pool.query(
        "DROP CAST (text AS public.mood); DROP FUNCTION public.mood_from_text(text)",
      );
    }
    expect((await db.pool.query("SELECT count(*)::int AS n FROM public.calls")).rows[0].n).toBe(0);
  });

  it("a domain's CHECK (the owner's function) never runs, the role never changes", async () => {
    await expectSame(
      "SELECT id, watched FROM public.awkward WHERE ((watched > 100)) AND ((watched < 120))",
    );
    await expectSame(
      "SELECT watched, count(*) FROM public.awkward WHERE watched IS NOT NULL GROUP BY 1",
    );
    await expectSame("SELECT id, watched FROM public.awkward");
    await refusal("SELECT id FROM public.awkward WHERE CAST(id AS public.watched_int) > 0");
    expect((await db.pool.query("SELECT count(*)::int AS n FROM public.calls")).rows[0].n).toBe(0);
    const { rows } = await bridgePool.query(
      "SELECT current_user AS u, current_setting('role') AS r",
    );
    expect(rows[0].r).toBe("none");
  });
});
