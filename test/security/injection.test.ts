import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningBridge } from "../../bridge/bridge.ts";
import {
  offloadNow,
  startTestBridge,
  testStoreConfig,
  waitForJob,
} from "../support/bridge-harness.ts";
import { createTestDatabase, serverUrl, type TestDatabase } from "../support/test-database.ts";

// Text that tries to end the SQL it is pasted into and run a statement of its own. Each runs
// nextval() on a canary sequence: nextval survives errors and rollbacks, so a canary still unused
// at the end proves that none of them ran, whatever error the call raised.
const tag = Math.random().toString(36).slice(2, 8);
const mallory = `mallory_${tag}`;
const RUN = `SELECT pg_catalog.nextval('${mallory}.canary')`;
const PAYLOADS = [
  `x'); ${RUN}; --`,
  `x"; ${RUN}; --`,
  `true); ${RUN}; SELECT (true`,
  `1) IS NULL; ${RUN}; --`,
  `true)::boolean; ${RUN}; SELECT (true`,
  `$$; ${RUN}; $$`,
  `x$q$; ${RUN}; --`,
  `*/ ${RUN}; /*`,
  `x\\'; ${RUN}; --`,
  `x'; ${RUN}; --`,
  `x"); ${RUN}; --`,
  `id) FROM pg_class; ${RUN}; --`,
  `\n); ${RUN};\n--`,
];

interface CallableFunction {
  signature: string;
  name: string;
  types: string[];
}

/** A harmless value of each argument type the offload functions take, as a SQL expression. */
function sampleValue(type: string, table: string): string {
  if (type === "regclass") return `'${table}'::regclass`;
  if (type === "jsonb") return "'{}'::jsonb";
  if (type === "interval") return "interval '1 day'";
  if (/^(bigint|integer|smallint|numeric|double precision)$/.test(type)) return `1::${type}`;
  if (type === "boolean") return "false";
  if (type === "text" || type === "name") return `'x'::${type}`;
  if (type.endsWith("[]")) return `'{}'::${type}`;
  return `NULL::${type}`;
}

/** The payload in the shape of an argument of this type; undefined when it takes no text. */
function payloadArgument(type: string, payload: string): unknown[] | undefined {
  if (type === "text" || type === "name") return [payload];
  if (type === "text[]" || type === "name[]") return [[payload]];
  if (type === "jsonb") {
    return [JSON.stringify({ v: payload }), JSON.stringify({ [payload]: "1" })];
  }
  return undefined;
}

describe("text from a user never runs as more than the one value or expression it claims to be", () => {
  let db: TestDatabase;
  let bridge: RunningBridge;
  let cleanupStore: () => Promise<void>;
  let attacker: pg.Client;
  const table = `${mallory}.events`;

  async function canaryUsed(): Promise<boolean> {
    const { rows } = await db.pool.query(`SELECT is_called FROM ${mallory}.canary`);
    return rows[0].is_called;
  }

  beforeAll(async () => {
    db = await createTestDatabase("injection");
    const store = await testStoreConfig("local");
    cleanupStore = store.cleanup;
    bridge = await startTestBridge(db.url, store.config);
    await db.pool.query(`
      CREATE ROLE ${mallory} LOGIN;
      CREATE SCHEMA ${mallory} AUTHORIZATION ${mallory};
      CREATE SEQUENCE ${mallory}.canary; GRANT USAGE, SELECT ON SEQUENCE ${mallory}.canary TO PUBLIC;
      CREATE TABLE ${table} (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, v int);
      INSERT INTO ${table} SELECT i, now() - (2000 - i) * interval '1 hour', 0 FROM generate_series(1, 2000) i;
      ALTER TABLE ${table} OWNER TO ${mallory};
      SELECT offload.define_policy('cold_30d', time_column => 'created_at', older_than => '30 days');
      SELECT offload.attach_policy('${table}', 'cold_30d');`);
    expect(await offloadNow(db.pool, table)).toMatchObject({ state: "succeeded" });
    attacker = new pg.Client({ connectionString: db.url.replace(/\/\/[^@/]*@/, `//${mallory}@`) });
    await attacker.connect();
  });

  afterAll(async () => {
    await attacker?.end();
    await bridge?.stop();
    await db?.drop();
    const admin = new pg.Client({ connectionString: serverUrl() });
    await admin.connect();
    await admin
      .query(`DROP OWNED BY ${mallory} CASCADE; DROP ROLE IF EXISTS ${mallory}`)
      .catch(() => {});
    await admin.end();
    await cleanupStore?.();
  });

  it("through every text argument of every offload function a user may call", async () => {
    const { rows: functions } = await db.pool.query<CallableFunction>(
      `SELECT p.oid::regprocedure::text AS signature, p.proname AS name,
              array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) t) AS types
         FROM pg_proc p
        WHERE p.pronamespace = 'offload'::regnamespace AND p.prokind = 'f'
          AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)
          AND has_function_privilege($1, p.oid, 'EXECUTE')
        ORDER BY 1`,
      [mallory],
    );
    let calls = 0;
    for (const fn of functions) {
      for (const [position, type] of fn.types.entries()) {
        for (const payload of PAYLOADS) {
          for (const value of payloadArgument(type, payload) ?? []) {
            const args = fn.types.map((t, i) =>
              i === position ? `$1::${t}` : sampleValue(t, table),
            );
            await attacker.query("BEGIN");
            await attacker
              .query(`SELECT offload.${fn.name}(${args.join(", ")})`, [value])
              .catch(() => {});
            await attacker.query("ROLLBACK");
            calls++;
            if (await canaryUsed())
              throw new Error(`ran: ${fn.signature}, argument ${position + 1}: ${payload}`);
          }
        }
      }
    }
    // Guards the test itself: it must have found the functions that take a user's text.
    expect(functions.map((f) => f.name)).toEqual(
      expect.arrayContaining([
        "delete_cold",
        "update_cold",
        "define_policy",
        "attach_policy",
        "load_back",
      ]),
    );
    expect(calls).toBeGreaterThan(100);
    expect(await canaryUsed()).toBe(false);
  });

  it("through a rewrite job inserted directly, bypassing the checks of delete_cold and update_cold", async () => {
    const attempts = [
      { delete: true, condition: PAYLOADS[2] },
      { delete: true, condition: `true); ${RUN}; SELECT (true` },
      { delete: false, condition: "true", assignments: { v: `1); ${RUN}; SELECT (1` } },
      { delete: false, condition: "true", assignments: { [`v"; ${RUN}; --`]: "1" } },
      { delete: true, condition: "false", settings: { search_path: `x'; ${RUN}; --` } },
    ];
    for (const params of attempts) {
      const { rows } = await attacker.query(
        "INSERT INTO offload.jobs (table_id, kind, params) VALUES ($1::regclass, 'rewrite', $2) RETURNING id",
        [table, JSON.stringify(params)],
      );
      const job = await waitForJob(db.pool, Number(rows[0].id));
      if (params.condition !== "false") {
        expect(job.state).toBe("failed");
        expect(job.last_error).toMatch(/\S/);
      }
      expect(await canaryUsed()).toBe(false);
    }
  });
});
