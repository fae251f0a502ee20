import pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { RunningBridge } from "../../bridge/bridge.ts";
import {
  type JobRow,
  offloadNow,
  startTestBridge,
  testStoreConfig,
  waitForJob,
} from "../support/bridge-harness.ts";
import { tableDigest } from "../support/digest.ts";
import { step } from "../support/steps.ts";
import { waitUntil } from "../support/wait.ts";
import { createTestDatabase, serverUrl, type TestDatabase } from "../support/test-database.ts";

// A table owner who is not a superuser, trying to run code with the bridge's rights. Every hook
// calls mallory.probe(), which counts (with sequences: nextval survives rollbacks) whether it ran
// as mallory or as anyone else, then tries the statement in mallory.attack and counts it if
// PostgreSQL let it through.

const tag = Math.random().toString(36).slice(2, 8);
const mallory = `mallory_${tag}`;
const victim = `victim_${tag}`;

/** Statements that must be refused wherever mallory's code runs. */
function forbidden(superuser: string): string[] {
  return [
    "RESET ROLE",
    `SET ROLE ${superuser}`,
    `SET SESSION AUTHORIZATION ${superuser}`,
    "RESET SESSION AUTHORIZATION",
    "SELECT pg_catalog.set_config('role', 'none', false)",
    `SELECT pg_catalog.set_config('session_authorization', '${superuser}', false)`,
    "COPY (SELECT 1) TO PROGRAM 'true'",
    `INSERT INTO ${victim}.secret VALUES ('written by ${mallory}')`,
    `ALTER ROLE ${mallory} SUPERUSER`,
    "SET session_replication_role = replica",
    "SELECT pg_catalog.pg_read_file('postgresql.conf')",
  ];
}

/**
 * Allowed to mallory, but aimed at the bridge: make every function mallory owns in the session's
 * temporary schema SECURITY INVOKER (so a later call would run as the caller), leave session state
 * behind (a search_path, an advisory lock, a temporary table shadowing a catalog name), and queue a
 * deferred trigger that would fire at COMMIT.
 */
const SUBVERSIONS = [
  `DO $d$ DECLARE f regprocedure; BEGIN
     FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname LIKE 'pg_temp%' AND p.proowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
     LOOP EXECUTE format('ALTER FUNCTION %s SECURITY INVOKER', f); END LOOP; END $d$`,
  `SELECT pg_catalog.set_config('search_path', '${mallory}, pg_catalog', false)`,
  "SELECT pg_catalog.pg_advisory_lock(424242)",
  "CREATE TEMP TABLE IF NOT EXISTS pg_class (oid oid)",
  `INSERT INTO ${mallory}.deferred VALUES (1)`,
];

/**
 * A table of mallory's with the hooks an offload would fire (a trigger, a deferred trigger, a
 * rule, all ALWAYS) and a column of a domain whose CHECK calls the probe, attached to cold_30d:
 * 4000 rows, row i 4000 - i hours and a half old, so ids 1..3280 are older than 30 days.
 */
function hostileTableSql(name: string): string {
  const t = `${mallory}.${name}`;
  return `
    CREATE TABLE ${t} (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, v int, d ${mallory}.checked);
    INSERT INTO ${t}
      SELECT i, now() - (4000 - i) * interval '1 hour' - interval '30 minutes', 0, 'x'
        FROM generate_series(1, 4000) i;
    CREATE TRIGGER probe BEFORE DELETE ON ${t} FOR EACH ROW EXECUTE FUNCTION ${mallory}.probe_trigger('offload');
    ALTER TABLE ${t} ENABLE ALWAYS TRIGGER probe;
    CREATE CONSTRAINT TRIGGER probe_late AFTER DELETE ON ${t} DEFERRABLE INITIALLY DEFERRED
      FOR EACH ROW EXECUTE FUNCTION ${mallory}.probe_trigger('offload');
    ALTER TABLE ${t} ENABLE ALWAYS TRIGGER probe_late;
    CREATE RULE probe AS ON DELETE TO ${t} DO ALSO SELECT ${mallory}.probe('offload');
    ALTER TABLE ${t} ENABLE ALWAYS RULE probe;
    SELECT offload.attach_policy('${t}', 'cold_30d');`;
}

/** The rows of a hostile table (hostileTableSql) that are older than 30 days: ids 1..3280. */
const DUE_ROWS = 3280;

interface Counters {
  self: number;
  other: number;
  escaped: number;
}

describe("a table owner who is not a superuser, as an adversary", () => {
  let db: TestDatabase;
  let bridge: RunningBridge;
  let cleanupStore: () => Promise<void>;
  let superuser: string;
  let owner: pg.Client;
  const table = `${mallory}.events`;
  const offload = {} as {
    before: Counters;
    after: Counters;
    hotBefore: number;
    hotAfter: number;
    job: JobRow;
  };

  async function counters(): Promise<Counters> {
    const { rows } = await db.pool.query(
      `SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM ${mallory}.as_self)::int AS self,
              (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM ${mallory}.as_other)::int AS other,
              (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM ${mallory}.escaped)::int AS escaped`,
    );
    return rows[0];
  }

  async function hotRows(): Promise<number> {
    return Number((await db.pool.query(`SELECT count(*) FROM ONLY ${table}`)).rows[0].count);
  }

  /** Makes the hook named `hook` (and deferred triggers) try `statement`; the others stay quiet. */
  async function arm(statement: string, hook = "none"): Promise<void> {
    await db.pool.query(`UPDATE ${mallory}.attack SET hook = $1, statement = $2`, [
      hook,
      statement,
    ]);
  }

  async function expectNoEscalation(): Promise<void> {
    expect((await counters()).other).toBe(0);
    // The bridge closes a connection user code ran in: its session-level locks go with it.
    await waitUntil(async () => {
      const { rows } = await db.pool.query(
        "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = 424242",
      );
      return rows[0].n === 0;
    });
    const { rows } = await db.pool.query(
      `SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = $1) AS superuser,
              (SELECT count(*)::int FROM ${victim}.secret) AS secrets`,
      [mallory],
    );
    expect(rows[0]).toEqual({ superuser: false, secrets: 1 });
  }

  beforeAll(async () => {
    db = await createTestDatabase("hostile-owner");
    const store = await testStoreConfig("local");
    cleanupStore = store.cleanup;
    superuser = (await db.pool.query("SELECT current_user AS u")).rows[0].u;
    bridge = await startTestBridge(db.url, store.config);
    await db.pool.query(`
      CREATE ROLE ${mallory} LOGIN; CREATE ROLE ${victim};
      CREATE SCHEMA ${victim} AUTHORIZATION ${victim};
      CREATE TABLE ${victim}.secret (v text); INSERT INTO ${victim}.secret VALUES ('untouched');
      ALTER TABLE ${victim}.secret OWNER TO ${victim};
      CREATE SCHEMA ${mallory} AUTHORIZATION ${mallory};
      GRANT USAGE ON SCHEMA ${mallory}, ${victim} TO PUBLIC;`);
    owner = new pg.Client({ connectionString: db.url.replace(/\/\/[^@/]*@/, `//${mallory}@`) });
    await owner.connect();
    await owner.query(`
      SET search_path = ${mallory};
      CREATE SEQUENCE as_self; CREATE SEQUENCE as_other; CREATE SEQUENCE escaped;
      GRANT USAGE, UPDATE, SELECT ON SEQUENCE as_self, as_other, escaped TO PUBLIC;
      CREATE TABLE attack (hook text, statement text); INSERT INTO attack VALUES ('none', 'SELECT 1');
      GRANT SELECT ON attack TO PUBLIC;
      CREATE FUNCTION ${mallory}.probe(hook text) RETURNS boolean LANGUAGE plpgsql AS $$
      BEGIN
        -- Once per transaction: a domain's CHECK runs for every row read.
        IF hook <> (SELECT a.hook FROM ${mallory}.attack a)
           OR current_setting('mallory.attacked', true) = 'yes' THEN
          RETURN true;
        END IF;
        PERFORM pg_catalog.set_config('mallory.attacked', 'yes', true);
        PERFORM pg_catalog.nextval(CASE WHEN current_user = '${mallory}'
                                        THEN '${mallory}.as_self' ELSE '${mallory}.as_other' END);
        BEGIN
          EXECUTE (SELECT statement FROM ${mallory}.attack);
          PERFORM pg_catalog.nextval('${mallory}.escaped');
        EXCEPTION WHEN OTHERS THEN NULL;
        END;
        IF current_user <> '${mallory}' OR (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
          PERFORM pg_catalog.nextval('${mallory}.as_other');
        END IF;
        RETURN true;
      END $$;
      CREATE FUNCTION ${mallory}.probe_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM ${mallory}.probe(TG_ARGV[0]); RETURN coalesce(NEW, OLD); END $$;
      -- Deferred to COMMIT, enabled even in replica mode.
      CREATE TABLE deferred (v int);
      CREATE CONSTRAINT TRIGGER probe_at_commit AFTER INSERT ON deferred DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION ${mallory}.probe_trigger('any');
      ALTER TABLE deferred ENABLE ALWAYS TRIGGER probe_at_commit;
      -- Checked whenever a value is read from text: also while the bridge reads a segment.
      CREATE DOMAIN checked AS text CHECK (${mallory}.probe('domain'));`);
    await db.pool.query(
      "SELECT offload.define_policy('cold_30d', time_column => 'created_at', older_than => '30 days')",
    );
    // events, offloaded here with its hooks armed, is what the first case checks and what every
    // hook case attacks through; those cases change no row of it. A case that changes a table
    // (its rows, hooks or columns) makes a hostile table of its own.
    await owner.query(hostileTableSql("events"));
    await arm(`SET ROLE ${superuser}`, "offload");
    offload.before = await counters();
    offload.hotBefore = await hotRows();
    offload.job = await offloadNow(db.pool, table);
    offload.hotAfter = await hotRows();
    offload.after = await counters();
  });

  afterAll(async () => {
    await owner?.end();
    await bridge?.stop();
    await db?.drop();
    const admin = new pg.Client({ connectionString: serverUrl() });
    await admin.connect();
    try {
      for (const role of [mallory, victim]) {
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

  beforeEach(async () => {
    await arm("SELECT 1");
  });

  it("an offload runs none of the owner's triggers or rules, even those enabled ALWAYS", async () => {
    expect(offload.job).toMatchObject({ state: "succeeded", rows_done: String(DUE_ROWS) });
    expect(offload.hotBefore).toBe(4000);
    expect(offload.hotAfter).toBe(4000 - DUE_ROWS);
    expect(offload.after).toEqual(offload.before);
    // Their modes are as the owner left them.
    const { rows } = await db.pool.query(
      `SELECT tgname AS name, tgenabled AS mode FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal
       UNION ALL SELECT rulename, ev_enabled FROM pg_rewrite WHERE ev_class = $1::regclass ORDER BY 1, 2`,
      [table],
    );
    expect(rows).toEqual([
      { name: "probe", mode: "A" },
      { name: "probe", mode: "A" },
      { name: "probe_late", mode: "A" },
    ]);
    await expectNoEscalation();
  });

  // Each request changes no row: the condition matches none, the assignment keeps v, the rewrite
  // writes the same rows again.
  const hooks: [string, string, (on: string) => string][] = [
    [
      "a delete_cold condition",
      "condition",
      (on) =>
        `SELECT offload.delete_cold('${on}', '${mallory}.probe(''condition'') IS NULL') AS id`,
    ],
    [
      "an update_cold assignment",
      "assignment",
      (on) =>
        `SELECT offload.update_cold('${on}', '{"v": "CASE WHEN ${mallory}.probe(''assignment'') THEN v END"}', 'id = 1') AS id`,
    ],
    // The domain's CHECK runs for every value of column d read from a segment.
    [
      "a domain CHECK, while the segment is read",
      "domain",
      (on) => `SELECT offload.rewrite_cold('${on}') AS id`,
    ],
  ];

  /** Arms `statement` in `hook`, has mallory make the request that runs it on `on`, checks. */
  async function attack(
    hook: string,
    request: (on: string) => string,
    on: string,
    statement: string,
  ) {
    await arm(statement, hook);
    const before = await counters();
    const { rows } = await owner.query(request(on));
    const job = await waitForJob(db.pool, Number(rows[0].id));
    expect(job).toMatchObject({ state: "succeeded" });
    const after = await counters();
    expect(after.self).toBeGreaterThan(before.self); // the hook did run, as mallory
    if (!SUBVERSIONS.includes(statement)) expect(after.escaped).toBe(before.escaped);
    await expectNoEscalation();
  }

  describe.each(hooks)("code called from %s", (_where, hook, request) => {
    it.each([...forbidden("SUPERUSER_NAME"), ...SUBVERSIONS])(
      "runs as the owner, cannot do: %s",
      async (template) => {
        await attack(hook, request, table, template.replaceAll("SUPERUSER_NAME", superuser));
      },
    );
  });

  // One scenario: attacks that leave state behind in the bridge's session, through every hook, one
  // after the other on a table of the case's own; then a job of the owner's.
  it("after attacks through every hook, the table reads as it did and later jobs still work", async () => {
    const own = `${mallory}.after_attacks`;
    await owner.query(hostileTableSql("after_attacks"));
    expect(await offloadNow(db.pool, own)).toMatchObject({ state: "succeeded" });
    const before = await tableDigest(db.pool, own);
    for (const [where, hook, request] of hooks) {
      for (const statement of SUBVERSIONS) {
        await step(`${where}: ${statement}`, () => attack(hook, request, own, statement));
      }
    }
    await arm("SELECT 1");
    const digest = await tableDigest(db.pool, own);
    expect(digest).toBe(before);
    const { rows } = await owner.query(
      `SELECT offload.update_cold('${own}', '{"v": "v + 1"}', 'id <= 10') AS id`,
    );
    expect(await waitForJob(db.pool, Number(rows[0].id))).toMatchObject({ state: "succeeded" });
    const { rows: changed } = await db.pool.query(
      `SELECT count(*) FILTER (WHERE v = 1)::int AS one, count(*) FILTER (WHERE v <> 0 AND v <> 1)::int AS other,
              count(*)::int AS n FROM ${own}`,
    );
    expect(changed[0]).toEqual({ one: 10, other: 0, n: 4000 });
    expect(await tableDigest(db.pool, own)).not.toBe(digest);
  });

  it("a load back, run by a superuser as the CLI runs it, fires none of the owner's triggers or rules", async () => {
    // A table of the case's own: it gains insert hooks, goes hot and cold again.
    const table = `${mallory}.loaded_back`;
    await owner.query(hostileTableSql("loaded_back"));
    expect(await offloadNow(db.pool, table)).toMatchObject({ state: "succeeded" });
    await owner.query(`
      CREATE TRIGGER probe_insert BEFORE INSERT ON ${table}
        FOR EACH ROW EXECUTE FUNCTION ${mallory}.probe_trigger('load back');
      ALTER TABLE ${table} ENABLE ALWAYS TRIGGER probe_insert;
      CREATE RULE probe_insert AS ON INSERT TO ${table} DO ALSO SELECT ${mallory}.probe('load back');
      ALTER TABLE ${table} ENABLE ALWAYS RULE probe_insert;`);
    await arm(`ALTER ROLE ${mallory} SUPERUSER`, "load back");
    const digest = await tableDigest(db.pool, table);
    const before = await counters();
    const { rows } = await db.pool.query("SELECT offload.load_back($1::regclass) AS n", [table]);
    expect(Number(rows[0].n)).toBe(DUE_ROWS);
    expect(await counters()).toEqual(before);
    expect(await tableDigest(db.pool, table)).toBe(digest);
    const modes = await db.pool.query(
      `SELECT tgenabled AS mode FROM pg_trigger WHERE tgrelid = $1::regclass AND tgname = 'probe_insert'
       UNION ALL SELECT ev_enabled FROM pg_rewrite WHERE ev_class = $1::regclass AND rulename = 'probe_insert'`,
      [table],
    );
    expect(modes.rows).toEqual([{ mode: "A" }, { mode: "A" }]);
    expect(await offloadNow(db.pool, table)).toMatchObject({ state: "succeeded" });
    await expectNoEscalation();
  });

  it("catalog rows written directly are checked as the API checks them: no domain as a key type", async () => {
    await arm(`ALTER ROLE ${mallory} SUPERUSER`, "catalog");
    const before = await counters();
    await owner.query(`
      CREATE DOMAIN ${mallory}.evil_date AS date CHECK (${mallory}.probe('catalog'));
      CREATE TABLE ${mallory}.direct (id bigint, created_at date);`);
    const error = await owner
      .query(
        `INSERT INTO offload.attachments (table_id, policy_name, key_column, key_type)
         VALUES ('${mallory}.direct', 'cold_30d', 'created_at', '${mallory}.evil_date')`,
      )
      .catch((e: { code: string; message: string }) => e);
    expect(error).toMatchObject({
      code: "22023",
      message: expect.stringMatching(/does not describe the table/),
    });
    // The scheduler's due-check, as the bridge runs it, finds nothing to cast.
    await db.pool
      .query("SELECT offload.is_due($1::regclass)", [`${mallory}.direct`])
      .catch(() => undefined);
    expect(await counters()).toEqual(before);
    await expectNoEscalation();
  });

  it("an ALTER by a superuser never evaluates a default the event trigger did not see added", async () => {
    // A table of the case's own, with offloaded rows: it gains a parent and, through it, a column.
    const table = `${mallory}.inheriting`;
    await owner.query(hostileTableSql("inheriting"));
    expect(await offloadNow(db.pool, table)).toMatchObject({ state: "succeeded" });
    await arm(`ALTER ROLE ${mallory} SUPERUSER`, "default");
    await owner
      .query(
        `
      CREATE FUNCTION ${mallory}.default_v() RETURNS int LANGUAGE plpgsql STABLE AS $$
      BEGIN PERFORM ${mallory}.probe('default'); RETURN 1; END $$;
      CREATE TABLE ${mallory}.base (id bigint);
      ALTER TABLE ${table} INHERIT ${mallory}.base;`,
      )
      .catch(() => undefined);
    const inherits = await db.pool.query(
      "SELECT count(*)::int AS n FROM pg_inherits WHERE inhrelid = $1::regclass",
      [table],
    );
    expect(inherits.rows[0].n).toBe(1);
    const before = await counters();
    // Added through the parent: the event trigger hears of the parent only.
    await owner.query(
      `ALTER TABLE ${mallory}.base ADD COLUMN w int DEFAULT ${mallory}.default_v()`,
    );
    const error = await db.pool
      .query(`ALTER TABLE ${table} ALTER COLUMN v SET STATISTICS 100`)
      .catch((e: { message: string }) => e);
    expect(error).toMatchObject({ message: expect.stringMatching(/did not see/) });
    const after = await counters();
    expect(after.other).toBe(before.other);
    await expectNoEscalation();
  });
});
