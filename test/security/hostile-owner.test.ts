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
      CREATE DOMAIN checked AS text CHECK (${mallory}.probe('domain'));
      CREATE TABLE events (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, v int, d checked);
      INSERT INTO events SELECT i, now() - (4000 - i) * interval '1 hour', 0, 'x' FROM generate_series(1, 4000) i;
      -- Hooks that would fire while rows move out: a trigger, a deferred trigger, a rule, all ALWAYS.
      CREATE TRIGGER probe BEFORE DELETE ON events FOR EACH ROW EXECUTE FUNCTION ${mallory}.probe_trigger('offload');
      ALTER TABLE events ENABLE ALWAYS TRIGGER probe;
      CREATE CONSTRAINT TRIGGER probe_late AFTER DELETE ON events DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION ${mallory}.probe_trigger('offload');
      ALTER TABLE events ENABLE ALWAYS TRIGGER probe_late;
      CREATE RULE probe AS ON DELETE TO events DO ALSO SELECT ${mallory}.probe('offload');
      ALTER TABLE events ENABLE ALWAYS RULE probe;`);
    await db.pool.query(
      "SELECT offload.define_policy('cold_30d', time_column => 'created_at', older_than => '30 days')",
    );
    await owner.query(`SELECT offload.attach_policy('${table}', 'cold_30d')`);
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
    expect(offload.job).toMatchObject({ state: "succeeded" });
    expect(offload.hotAfter).toBeLessThan(offload.hotBefore);
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

  const hooks: [string, string, () => string][] = [
    [
      "a delete_cold condition",
      "condition",
      () =>
        `SELECT offload.delete_cold('${table}', '${mallory}.probe(''condition'') IS NULL') AS id`,
    ],
    [
      "an update_cold assignment",
      "assignment",
      () =>
        `SELECT offload.update_cold('${table}', '{"v": "CASE WHEN ${mallory}.probe(''assignment'') THEN v END"}', 'id = 1') AS id`,
    ],
    // The domain's CHECK runs for every value of column d read from a segment.
    [
      "a domain CHECK, while the segment is read",
      "domain",
      () => `SELECT offload.rewrite_cold('${table}') AS id`,
    ],
  ];

  describe.each(hooks)("code called from %s", (_where, hook, request) => {
    it.each([...forbidden("SUPERUSER_NAME"), ...SUBVERSIONS])(
      "runs as the owner, cannot do: %s",
      async (template) => {
        await arm(template.replaceAll("SUPERUSER_NAME", superuser), hook);
        const before = await counters();
        const { rows } = await owner.query(request());
        const job = await waitForJob(db.pool, Number(rows[0].id));
        expect(job).toMatchObject({ state: "succeeded" });
        const after = await counters();
        expect(after.self).toBeGreaterThan(before.self); // the hook did run, as mallory
        if (!SUBVERSIONS.includes(template)) expect(after.escaped).toBe(before.escaped);
        await expectNoEscalation();
      },
    );
  });

  it("after all that, the table reads as it did and later jobs still work", async () => {
    const digest = await tableDigest(db.pool, table);
    const { rows } = await owner.query(
      `SELECT offload.update_cold('${table}', '{"v": "v + 1"}', 'id <= 10') AS id`,
    );
    expect(await waitForJob(db.pool, Number(rows[0].id))).toMatchObject({ state: "succeeded" });
    const { rows: changed } = await db.pool.query(
      `SELECT count(*) FILTER (WHERE v = 1)::int AS one, count(*) FILTER (WHERE v <> 0 AND v <> 1)::int AS other FROM ${table}`,
    );
    expect(changed[0]).toEqual({ one: 10, other: 0 });
    expect(await tableDigest(db.pool, table)).not.toBe(digest);
  });

  it("a load back, run by a superuser as the CLI runs it, fires none of the owner's triggers or rules", async () => {
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
    expect(Number(rows[0].n)).toBeGreaterThan(0);
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
