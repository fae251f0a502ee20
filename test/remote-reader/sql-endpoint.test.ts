import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../bridge/log.ts";
import {
  ColdReadError,
  type AuthorizedTable,
  type ColdData,
  type RemoteSelect,
  type SessionSettings,
} from "../../bridge/remote-reader/cold-data.ts";
import { endpointPassword } from "../../bridge/remote-reader/endpoint-password.ts";
import { SqlEndpoint } from "../../bridge/remote-reader/sql-endpoint.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";

const SECRET = Buffer.from("a test secret of the sql endpoint");
const USER = "cold_t";
const ROWS: Array<[string, string | null]> = [
  ["1", "one"],
  ["2", null],
  ["3", "tab\there"],
  ["4", "ünïcødé ✓ 'quote' \"dq\" \\ backslash"],
  ["5", "five"],
];

type Node = Record<string, unknown>;
const names = (list: unknown) =>
  (list as Node[]).map((n) => String((n.String as Node | undefined)?.sval ?? ""));

/** The value of a constant or of $n, possibly cast: the conditions this test ColdData honours. */
function valueOf(node: Node, params: Array<string | null>): string | null {
  if (node.TypeCast) return valueOf((node.TypeCast as Node).arg as Node, params);
  if (node.ParamRef) return params[Number((node.ParamRef as Node).number) - 1] ?? null;
  const constant = node.A_Const as Node | undefined;
  if (constant?.ival) return String((constant.ival as Node).ival ?? 0);
  if (constant?.sval) return String((constant.sval as Node).sval ?? "");
  throw new ColdReadError(`test ColdData: no value in ${JSON.stringify(node)}`, "0A000");
}

interface Served {
  query: RemoteSelect;
  settings: SessionSettings;
  signal: AbortSignal;
  yielded: number;
  finished: boolean;
}

/** Serves ROWS as public.t; public.slow never ends; public.broken fails. */
class TestColdData implements ColdData {
  served: Served[] = [];
  estimated: RemoteSelect[] = [];

  async authorize(user: string): Promise<AuthorizedTable | undefined> {
    return user === USER ? { table: "public.t", tableOid: 12345 } : undefined;
  }

  async select(
    _table: AuthorizedTable,
    query: RemoteSelect,
    settings: SessionSettings,
    signal: AbortSignal,
  ) {
    const tree = query.tree as Node;
    const from = (tree.fromClause as Node[])[0]!.RangeVar as Node;
    if (from.relname === "broken") {
      throw new ColdReadError("the segment of broken is missing", "58P01");
    }
    const columns = (tree.targetList as Node[]).map((target) => {
      const val = (target.ResTarget as Node).val as Node;
      const name = val.ColumnRef ? names((val.ColumnRef as Node).fields).at(-1)! : "?column?";
      return { name, typeOid: name === "id" ? 23 : 25 };
    });
    let rows = ROWS;
    const where = (tree.whereClause as Node | undefined)?.A_Expr as Node | undefined;
    if (tree.whereClause) {
      // column = value, either way round.
      const sides = [where?.lexpr, where?.rexpr] as Node[];
      const left = sides.find((side) => side?.ColumnRef);
      const right = sides.find((side) => side !== left);
      if (!where || names(where.name).join() !== "=" || !left || !right) {
        throw new ColdReadError(`test ColdData: only column = value: ${query.sql}`, "0A000");
      }
      const column = names((left.ColumnRef as Node).fields).at(-1);
      const value = valueOf(right, query.params);
      rows = rows.filter((r) => (column === "id" ? r[0] : r[1]) === value);
    }
    if (tree.limitCount) rows = rows.slice(0, Number(valueOf(tree.limitCount as Node, [])));
    const served: Served = {
      query,
      settings: new Map(settings),
      signal,
      yielded: 0,
      finished: false,
    };
    this.served.push(served);
    const slow = from.relname === "slow";
    async function* generate() {
      try {
        if (slow) {
          yield ["1", "first"];
          await new Promise((resolve) => signal.addEventListener("abort", resolve));
          throw signal.reason;
        }
        for (const row of rows) {
          served.yielded++;
          yield columns.map((c) => (c.name === "id" ? row[0] : c.name === "s" ? row[1] : null));
        }
      } finally {
        served.finished = true;
      }
    }
    return { columns, rows: generate() };
  }

  /** Few rows with a condition, many without: parameterized paths win the planner over. */
  async estimate(_table: AuthorizedTable, query: RemoteSelect) {
    this.estimated.push(query);
    return (query.tree as Node).whereClause
      ? { startupCost: 100, totalCost: 101, rows: 1, width: 32 }
      : { startupCost: 100, totalCost: 123.5, rows: 456, width: 32 };
  }

  async relationSize() {
    return { bytes: 5 * 8192 + 10, rows: ROWS.length };
  }
}

describe("the SQL endpoint through postgres_fdw", () => {
  let db: TestDatabase;
  let endpoint: SqlEndpoint;
  let port: number;
  const cold = new TestColdData();
  const role = `fdw_reader_${Math.random().toString(36).slice(2, 8)}`;
  let reader: pg.PoolClient;

  beforeAll(async () => {
    endpoint = new SqlEndpoint(cold, silentLogger, { secret: SECRET });
    port = (await endpoint.listenOnTcp("127.0.0.1", 0)).port;
    db = await createTestDatabase("sql-endpoint");
    const password = endpointPassword(SECRET, USER);
    await db.pool.query(`
      CREATE EXTENSION IF NOT EXISTS postgres_fdw;
      CREATE ROLE ${role};
      CREATE SERVER cold FOREIGN DATA WRAPPER postgres_fdw
        OPTIONS (host '127.0.0.1', port '${port}', dbname 'x', fetch_size '2');
      CREATE SERVER cold_estimate FOREIGN DATA WRAPPER postgres_fdw
        OPTIONS (host '127.0.0.1', port '${port}', dbname 'x', use_remote_estimate 'true');
      CREATE SERVER cold_bad FOREIGN DATA WRAPPER postgres_fdw
        OPTIONS (host '127.0.0.1', port '${port}', dbname 'x');
      CREATE USER MAPPING FOR PUBLIC SERVER cold OPTIONS (user '${USER}', password '${password}');
      CREATE USER MAPPING FOR PUBLIC SERVER cold_estimate OPTIONS (user '${USER}', password '${password}');
      CREATE USER MAPPING FOR PUBLIC SERVER cold_bad OPTIONS (user '${USER}', password 'wrong');
      CREATE FOREIGN TABLE ft (id int, s text) SERVER cold OPTIONS (schema_name 'public', table_name 't');
      CREATE FOREIGN TABLE ft_est (id int, s text) SERVER cold_estimate OPTIONS (schema_name 'public', table_name 't');
      CREATE FOREIGN TABLE ft_slow (id int, s text) SERVER cold OPTIONS (schema_name 'public', table_name 'slow');
      CREATE FOREIGN TABLE ft_broken (id int, s text) SERVER cold OPTIONS (schema_name 'public', table_name 'broken');
      CREATE FOREIGN TABLE ft_bad (id int, s text) SERVER cold_bad OPTIONS (schema_name 'public', table_name 't');
      CREATE TABLE l (id int);
      INSERT INTO l VALUES (2), (4), (7);
      ANALYZE l;
      ALTER TABLE l OWNER TO ${role};
      ALTER FOREIGN TABLE ft OWNER TO ${role};
      ALTER FOREIGN TABLE ft_est OWNER TO ${role};
      ALTER FOREIGN TABLE ft_slow OWNER TO ${role};
      ALTER FOREIGN TABLE ft_broken OWNER TO ${role};
      ALTER FOREIGN TABLE ft_bad OWNER TO ${role};
    `);
    reader = await db.pool.connect();
    // Not a superuser from here on: postgres_fdw then insists the server asks for the password.
    await reader.query(`SET ROLE ${role}`);
  });

  afterAll(async () => {
    reader?.release();
    if (db) {
      await db.pool.query(`DROP OWNED BY ${role}; DROP ROLE ${role}`).catch(() => {});
      await db.drop();
    }
    await endpoint?.close(2_000);
  });

  it("is used as a non-superuser", async () => {
    const { rows } = await reader.query(
      "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
    );
    expect(rows).toEqual([{ rolsuper: false }]);
  });

  it("serves a full scan exactly, fetch_size rows at a time", async () => {
    cold.served = [];
    const { rows } = await reader.query("SELECT id, s FROM ft ORDER BY id");
    expect(rows.map((r) => [String(r.id), r.s])).toEqual(ROWS);
    expect(cold.served).toHaveLength(1);
    expect(cold.served[0]!.settings.get("search_path")).toBe("pg_catalog");
    expect(cold.served[0]!.settings.get("datestyle")).toBe("iso");
    expect(cold.served[0]!.finished).toBe(true);
  });

  it("pushes WHERE with constants down", async () => {
    cold.served = [];
    const { rows } = await reader.query("SELECT s FROM ft WHERE id = 3");
    expect(rows).toEqual([{ s: "tab\there" }]);
    expect(cold.served).toHaveLength(1);
    expect(cold.served[0]!.query.sql).toMatch(/WHERE \(\(id = 3\)\)/);
    expect(JSON.stringify(cold.served[0]!.query.tree)).toContain('"ival":3');
  });

  it("serves a parameterized nested-loop join with rescans", async () => {
    cold.served = [];
    await reader.query(
      "SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_material = off",
    );
    try {
      // Parameterized paths need use_remote_estimate (postgres_fdw has no other estimate of them).
      const join = "SELECT l.id, ft_est.s FROM l JOIN ft_est ON ft_est.id = l.id";
      const plan = await reader.query(`EXPLAIN (VERBOSE) ${join}`);
      const text = plan.rows.map((r) => r["QUERY PLAN"]).join("\n");
      cold.served = [];
      const { rows } = await reader.query(`${join} ORDER BY l.id`);
      expect(rows).toEqual([
        { id: 2, s: null },
        { id: 4, s: ROWS[3]![1] },
      ]);
      if (/\$1/.test(text)) {
        // Parameterized: one remote scan per outer row, $1 bound to its id.
        expect(cold.served.map((s) => s.query.params)).toEqual([["2"], ["4"], ["7"]]);
        expect(cold.served[0]!.query.sql).toMatch(/\$1::integer/);
      } else {
        throw new Error(`the plan does not send parameters:\n${text}`);
      }
    } finally {
      await reader.query("RESET enable_hashjoin; RESET enable_mergejoin; RESET enable_material");
    }
  });

  it("rescans an unparameterized inner foreign scan", async () => {
    cold.served = [];
    await reader.query(
      "SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_material = off",
    );
    try {
      const { rows } = await reader.query(
        "SELECT l.id, ft.id AS fid FROM l, ft WHERE ft.id + l.id = 9 ORDER BY l.id",
      );
      expect(rows).toEqual([
        { id: 4, fid: 5 },
        { id: 7, fid: 2 },
      ]);
      expect(cold.served.length).toBeGreaterThanOrEqual(1);
    } finally {
      await reader.query("RESET enable_hashjoin; RESET enable_mergejoin; RESET enable_material");
    }
  });

  it("closes the cursor early under a LIMIT", async () => {
    cold.served = [];
    const { rows } = await reader.query("SELECT id FROM ft WHERE random() >= 0 LIMIT 1");
    expect(rows).toHaveLength(1);
    expect(cold.served).toHaveLength(1);
    expect(cold.served[0]!.finished).toBe(true);
    expect(cold.served[0]!.yielded).toBeLessThan(ROWS.length);
    expect(cold.served[0]!.signal.aborted).toBe(false);
  });

  it("answers use_remote_estimate's EXPLAIN", async () => {
    const { rows } = await reader.query("EXPLAIN SELECT * FROM ft_est WHERE id = 1");
    expect(rows[0]["QUERY PLAN"]).toMatch(/Foreign Scan on ft_est .*rows=1 width=/);
    expect(cold.estimated.length).toBeGreaterThan(0);
    const data = await reader.query("SELECT id FROM ft_est WHERE id = 1");
    expect(data.rows).toEqual([{ id: 1 }]);
  });

  it("serves ANALYZE of the foreign table", async () => {
    await reader.query("ANALYZE ft");
    const { rows } = await reader.query(
      "SELECT reltuples::int AS tuples, relpages FROM pg_class WHERE oid = 'ft'::regclass",
    );
    expect(rows).toEqual([{ tuples: 5, relpages: 5 }]);
  });

  it("passes ColdData's errors on with their SQLSTATE", async () => {
    const error = await reader.query("SELECT * FROM ft_broken").catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "58P01" });
    expect((error as Error).message).toContain("the segment of broken is missing");
  });

  it("refuses a wrong password", async () => {
    const error = await reader.query("SELECT * FROM ft_bad").catch((e: unknown) => e);
    expect(String((error as { detail?: string }).detail ?? (error as Error).message)).toMatch(
      /password authentication failed for user "cold_t"/,
    );
  });

  it("refuses an UPDATE", async () => {
    const error = await reader.query("UPDATE ft SET s = 'x' WHERE id = 1").catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "25006" });
    expect((error as Error).message).toMatch(/does not serve UPDATE: UPDATE public\.t/);
    // The session is usable after the error.
    const { rows } = await reader.query("SELECT id FROM ft");
    expect(rows).toHaveLength(5);
  });

  it("aborts the cold select when the local query is cancelled", async () => {
    cold.served = [];
    await reader.query("SET statement_timeout = '500ms'");
    try {
      const error = await reader.query("SELECT * FROM ft_slow").catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "57014" });
    } finally {
      await reader.query("RESET statement_timeout");
    }
    expect(cold.served).toHaveLength(1);
    const served = cold.served[0]!;
    for (let i = 0; i < 50 && !served.signal.aborted; i++) await sleep(100);
    expect(served.signal.aborted).toBe(true);
    const { rows } = await reader.query("SELECT id FROM ft");
    expect(rows).toHaveLength(5);
  });
});

describe("the SQL endpoint to a direct client", () => {
  let endpoint: SqlEndpoint;
  let port: number;

  beforeAll(async () => {
    endpoint = new SqlEndpoint(new TestColdData(), silentLogger, { secret: SECRET });
    port = (await endpoint.listenOnTcp("127.0.0.1", 0)).port;
  });

  afterAll(async () => {
    await endpoint?.close(2_000);
  });

  const client = (user = USER, password = endpointPassword(SECRET, USER)) =>
    new pg.Client({ host: "127.0.0.1", port, user, password, database: "x" });

  it("refuses SET role and multi-statement writes", async () => {
    const c = client();
    await c.connect();
    try {
      await expect(c.query("SET role = postgres")).rejects.toMatchObject({
        code: "42501",
        message: expect.stringContaining('"role"'),
      });
      await expect(c.query("SELECT 1; DROP TABLE x")).rejects.toMatchObject({
        code: "0A000",
        message: expect.stringContaining("does not serve DROP: DROP TABLE x"),
      });
      await expect(c.query("SET SESSION AUTHORIZATION postgres")).rejects.toMatchObject({
        code: "42501",
      });
      // Extended protocol, with parameters: a plain SELECT.
      const { rows } = await c.query("SELECT id, s FROM public.t WHERE id = $1::integer", ["4"]);
      expect(rows).toEqual([{ id: 4, s: ROWS[3]![1] }]);
      await c.query("BEGIN");
      await expect(c.query("DELETE FROM t")).rejects.toMatchObject({ code: "25006" });
      await expect(c.query("SET timezone = 'UTC'")).rejects.toMatchObject({ code: "25P02" });
      await c.query("ROLLBACK");
      await c.query("SET timezone = 'UTC'");
    } finally {
      await c.end();
    }
  });

  it("serves cursors: FETCH, MOVE BACKWARD ALL, savepoints, CLOSE", async () => {
    const c = client();
    await c.connect();
    try {
      await c.query("START TRANSACTION ISOLATION LEVEL REPEATABLE READ");
      await c.query("DECLARE c1 CURSOR FOR SELECT id, s FROM public.t");
      const first = await c.query("FETCH 2 FROM c1");
      expect(first.rows).toEqual([
        { id: 1, s: "one" },
        { id: 2, s: null },
      ]);
      expect(first.command).toBe("FETCH");
      await c.query("MOVE BACKWARD ALL IN c1");
      expect((await c.query("FETCH 100 FROM c1")).rowCount).toBe(5);
      expect((await c.query("FETCH 100 FROM c1")).rowCount).toBe(0);
      await c.query("SAVEPOINT s2");
      await c.query("DECLARE c2 CURSOR FOR SELECT id FROM public.t");
      await c.query("ROLLBACK TO SAVEPOINT s2; RELEASE SAVEPOINT s2");
      await expect(c.query("FETCH 1 FROM c2")).rejects.toMatchObject({ code: "34000" });
      await c.query("ABORT TRANSACTION");
      await expect(c.query("DECLARE c3 CURSOR FOR SELECT id FROM public.t")).rejects.toMatchObject({
        code: "25P01",
      });
      await c.query("BEGIN");
      await c.query("DECLARE c1 CURSOR FOR SELECT id, s FROM public.t");
      await c.query("CLOSE c1");
      await c.query("COMMIT TRANSACTION");
    } finally {
      await c.end();
    }
  });

  it("refuses a wrong password and an unknown user alike", async () => {
    for (const c of [client(USER, "wrong"), client("nobody", endpointPassword(SECRET, "nobody"))]) {
      const error = await c.connect().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "28P01" });
      await c.end().catch(() => {});
    }
  });
});

describe("the SQL endpoint over TLS", () => {
  let endpoint: SqlEndpoint;
  let port: number;

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), "sql-endpoint-tls-"));
    try {
      await promisify(execFile)("openssl", [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-days",
        "1",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
      ]);
      const tls = {
        key: await readFile(join(dir, "key.pem")),
        cert: await readFile(join(dir, "cert.pem")),
      };
      endpoint = new SqlEndpoint(new TestColdData(), silentLogger, { secret: SECRET, tls });
      port = (await endpoint.listenOnTcp("127.0.0.1", 0)).port;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  afterAll(async () => {
    await endpoint?.close(2_000);
  });

  it("logs in and serves rows over TLS", async () => {
    const c = new pg.Client({
      host: "127.0.0.1",
      port,
      user: USER,
      password: endpointPassword(SECRET, USER),
      database: "x",
      ssl: { rejectUnauthorized: false },
    });
    await c.connect();
    try {
      const { rows } = await c.query("SELECT id FROM public.t WHERE id = 5");
      expect(rows).toEqual([{ id: 5 }]);
    } finally {
      await c.end();
    }
  });
});
