import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { RunningBridge } from "../bridge/bridge.ts";
import {
  offloadNow,
  startTestBridge,
  testStoreConfig,
  waitForJob,
} from "./support/bridge-harness.ts";
import { fixture, resultSet, segmentTables } from "./support/fixtures.ts";
import { step } from "./support/steps.ts";
import { pgDumpPath, serverTool } from "./support/server-tools.ts";
import {
  createEmptyDatabase,
  createTestDatabase,
  type TestDatabase,
} from "./support/test-database.ts";

const run = promisify(execFile);

/** Runs the statement on the table and on its never-offloaded control, in one transaction. */
async function alterBoth(db: pg.Pool, statement: string, table = "ledger"): Promise<void> {
  const client = await db.connect();
  try {
    await client.query("BEGIN");
    await client.query(statement.replaceAll("%s", table));
    await client.query(statement.replaceAll("%s", `${table}_control`));
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK");
    throw error;
  } finally {
    client.release();
  }
}

/** Runs the statement with the hot rows deleted (and then back): only the offloaded rows decide. */
async function onColdRowsOnly(db: pg.Pool, statement: string): Promise<void> {
  const client = await db.connect();
  try {
    await client.query("BEGIN");
    await client.query("DELETE FROM ONLY ledger");
    await client.query(statement);
  } finally {
    await client.query("ROLLBACK");
    client.release();
  }
}

async function expectSameAsControl(db: pg.Pool, table = "ledger", control = `${table}_control`) {
  const cold = await db.query(
    `SELECT count(*)::int AS n FROM ${table} WHERE tableoid <> '${table}'::regclass`,
  );
  expect(cold.rows[0].n).toBeGreaterThan(0);
  expect(await resultSet(db, `SELECT * FROM ${table} ORDER BY id`)).toEqual(
    await resultSet(db, `SELECT * FROM ${control} ORDER BY id`),
  );
}

async function columnTypes(db: pg.Pool, table: string): Promise<string[]> {
  const { rows } = await db.query(
    `SELECT attname || ' ' || format_type(atttypid, atttypmod) AS c FROM pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [table],
  );
  return rows.map((r) => r.c);
}

/**
 * A database of the case's own with the ledger fixture offloaded into several segments, and a
 * bridge serving it: every case starts from it, whatever ran before.
 */
function offloadedLedgerPerCase(label: string): { db: () => TestDatabase } {
  let db: TestDatabase | undefined;
  let bridge: RunningBridge | undefined;
  let cleanupStore: (() => Promise<void>) | undefined;
  beforeEach(async () => {
    db = await createTestDatabase(label);
    const store = await testStoreConfig("local");
    cleanupStore = store.cleanup;
    bridge = await startTestBridge(db.url, store.config, {
      overrides: { segmentTargetBytes: 128 * 1024, chunkBytes: 32 * 1024 },
    });
    await db.pool.query(fixture("schema-table.sql"));
    expect((await offloadNow(db.pool, "ledger")).state).toBe("succeeded");
    expect((await segmentTables(db.pool, "ledger")).length).toBeGreaterThan(2);
    await expectSameAsControl(db.pool);
  });
  afterEach(async () => {
    await bridge?.stop();
    await db?.drop();
    await cleanupStore?.();
    [db, bridge, cleanupStore] = [undefined, undefined, undefined];
  });
  return {
    db: () => {
      if (!db) throw new Error("the case's database is made in beforeEach");
      return db;
    },
  };
}

describe("schema changes on a table with offloaded rows", () => {
  const fixtureDb = offloadedLedgerPerCase("schema-changes");
  let db: TestDatabase;
  beforeEach(() => {
    db = fixtureDb.db();
  });

  // One table changed step by step, compared with its control after each step: one scenario.
  it("follows ADD, DROP, RENAME and ALTER TYPE of columns, refuses what it cannot follow, then offloads, rewrites and loads back in agreement with the control", async () => {
    await step(
      "ADD COLUMN: old rows read NULL, the default, a domain's default, now() at the ALTER",
      async () => {
        await alterBoth(db.pool, "ALTER TABLE %s ADD COLUMN plain int");
        await alterBoth(db.pool, "ALTER TABLE %s ADD COLUMN fixed text DEFAULT E'a\\tb\\\\c\\nd'");
        await alterBoth(db.pool, "ALTER TABLE %s ADD COLUMN stamped timestamptz DEFAULT now()");
        await alterBoth(
          db.pool,
          "ALTER TABLE %s ADD COLUMN dom positive, ADD COLUMN later numeric DEFAULT 'NaN'",
        );
        await expectSameAsControl(db.pool);
        const { rows } = await db.pool.query(
          "SELECT count(*)::int AS n FROM ledger WHERE fixed = E'a\\tb\\\\c\\nd' AND dom = 7 AND plain IS NULL",
        );
        expect(rows[0].n).toBe(3000);
      },
    );

    await step("DROP COLUMN and RENAME COLUMN, of stored and of added columns", async () => {
      await alterBoth(db.pool, "ALTER TABLE %s DROP COLUMN note");
      await alterBoth(db.pool, "ALTER TABLE %s RENAME COLUMN label TO title");
      await alterBoth(db.pool, "ALTER TABLE %s RENAME COLUMN fixed TO fixed_text");
      await alterBoth(db.pool, "ALTER TABLE %s DROP COLUMN plain");
      // A dropped column's name used again is a new column: old rows do not get the old values.
      await alterBoth(db.pool, "ALTER TABLE %s ADD COLUMN note text DEFAULT 'new note'");
      await expectSameAsControl(db.pool);
    });

    await step("ALTER COLUMN TYPE where the stored text reads as the new type", async () => {
      await alterBoth(db.pool, "ALTER TABLE %s ALTER COLUMN n TYPE bigint");
      await alterBoth(db.pool, "ALTER TABLE %s ALTER COLUMN title TYPE varchar(40)");
      await alterBoth(db.pool, "ALTER TABLE %s ALTER COLUMN price TYPE numeric(12, 3)");
      await alterBoth(db.pool, "ALTER TABLE %s ALTER COLUMN doc TYPE jsonb");
      await alterBoth(db.pool, "ALTER TABLE %s ALTER COLUMN n TYPE numeric");
      await expectSameAsControl(db.pool);
    });

    await step("refuses, changing nothing, what offloaded rows cannot follow", async () => {
      const before = await columnTypes(db.pool, "ledger");
      const refusals: Array<[string, RegExp]> = [
        [
          "ALTER TABLE ledger ALTER COLUMN title TYPE varchar(5)",
          /to character varying\(5\) while rows are offloaded/,
        ],
        ["ALTER TABLE ledger ALTER COLUMN price TYPE text", /would need converting/],
        ["ALTER TABLE ledger ADD COLUMN c timestamptz DEFAULT clock_timestamp()", /volatile/],
        ["ALTER TABLE ledger ADD COLUMN g bigint GENERATED ALWAYS AS (id * 2) STORED", /generated/],
        ["ALTER TABLE ledger DROP COLUMN created_at", /places the offloaded rows/],
        ["ALTER TABLE ledger ALTER COLUMN created_at TYPE timestamp", /places the offloaded rows/],
        [
          "ALTER TABLE ledger RENAME COLUMN created_at TO happened_at",
          /named by policy "ledger_cold"/,
        ],
      ];
      for (const [statement, message] of refusals) {
        await expect(db.pool.query(statement), statement).rejects.toMatchObject({
          message: expect.stringMatching(message),
          hint: expect.stringMatching(/load_back|detach_policy|without a default/),
        });
      }
      // Constraints PostgreSQL would not check on foreign tables, yet would use to skip them.
      await expect(
        db.pool.query("ALTER TABLE ledger ADD CONSTRAINT late_ids CHECK (id > 100)"),
      ).rejects.toMatchObject({
        code: "23514",
        message: expect.stringMatching(
          /offloaded rows of table public.ledger .* violate check constraint "late_ids"/,
        ),
      });
      const client = await db.pool.connect();
      try {
        await client.query("BEGIN");
        await client.query("UPDATE ONLY ledger SET price = 0 WHERE price IS NULL");
        await expect(
          client.query("ALTER TABLE ledger ALTER COLUMN price SET NOT NULL"),
        ).rejects.toMatchObject({
          message: expect.stringMatching(/violate NOT NULL on column "price"/),
        });
      } finally {
        await client.query("ROLLBACK");
        client.release();
      }
      await expect(
        db.pool.query("ALTER TABLE ledger ADD COLUMN required int NOT NULL"),
      ).rejects.toMatchObject({ code: "23502" });
      await alterBoth(db.pool, "ALTER TABLE %s ADD CONSTRAINT positive_ids CHECK (id > 0)");
      // PostgreSQL itself refuses these on a table with foreign children.
      await expect(
        db.pool.query("ALTER TABLE ledger ALTER COLUMN n TYPE numeric USING n * 2"),
      ).rejects.toMatchObject({ message: expect.stringMatching(/is not a table/) });
      await expect(
        db.pool.query("ALTER TABLE ledger ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY"),
      ).rejects.toMatchObject({ message: expect.stringMatching(/identity column/) });
      expect(await columnTypes(db.pool, "ledger")).toEqual(before);
      await expectSameAsControl(db.pool);
    });

    await step(
      "new offloads, rewrites and load_back after the changes agree with the control",
      async () => {
        await alterBoth(
          db.pool,
          "UPDATE ONLY %s SET created_at = created_at - interval '30 days' WHERE id > 2800",
        );
        const hotBefore = await db.pool.query("SELECT count(*)::int AS n FROM ONLY ledger");
        expect((await offloadNow(db.pool, "ledger")).state).toBe("succeeded");
        const hotAfter = await db.pool.query("SELECT count(*)::int AS n FROM ONLY ledger");
        // Exactly the 200 rows just moved 30 days back (ids 2801..3000) went cold: the other hot rows
        // are hours inside the 20 days, the rows one hour apart.
        expect(hotAfter.rows[0].n).toBe(hotBefore.rows[0].n - 200);
        await expectSameAsControl(db.pool);

        await alterBoth(db.pool, "ALTER TABLE %s ADD COLUMN after_rewrite int DEFAULT 5");
        const deleted = await db.pool.query(
          "SELECT offload.delete_cold('ledger', 'id % 10 = 3') AS id",
        );
        expect((await waitForJob(db.pool, Number(deleted.rows[0].id))).state).toBe("succeeded");
        await db.pool.query("DELETE FROM ledger_control WHERE id % 10 = 3");
        await db.pool.query("DELETE FROM ONLY ledger WHERE id % 10 = 3");
        const updated = await db.pool.query(
          `SELECT offload.update_cold('ledger', '{"title": "upper(title)"}', 'id % 10 = 4') AS id`,
        );
        expect((await waitForJob(db.pool, Number(updated.rows[0].id))).state).toBe("succeeded");
        await db.pool.query("UPDATE ledger_control SET title = upper(title) WHERE id % 10 = 4");
        await db.pool.query("UPDATE ONLY ledger SET title = upper(title) WHERE id % 10 = 4");
        await expectSameAsControl(db.pool);
        // A rewritten epoch stores today's columns, so later changes apply to it like to the others.
        await alterBoth(
          db.pool,
          "ALTER TABLE %s DROP COLUMN stamped, ADD COLUMN last text DEFAULT 'x'",
        );
        await expectSameAsControl(db.pool);

        const first = await db.pool.query(
          "SELECT range_lo, range_hi FROM offload.segments WHERE table_id = 'ledger'::regclass AND state = 'committed' ORDER BY id LIMIT 1",
        );
        await db.pool.query("SELECT offload.load_back('ledger', $1, $2)", [
          first.rows[0].range_lo,
          first.rows[0].range_hi,
        ]);
        await expectSameAsControl(db.pool);
      },
    );
  });

  it("RENAME, SET SCHEMA and OWNER TO take the segment tables along", async () => {
    await db.pool.query("CREATE SCHEMA archive; CREATE ROLE ledger_keeper");
    await db.pool.query("ALTER TABLE ledger RENAME TO journal");
    await db.pool.query("ALTER TABLE journal SET SCHEMA archive");
    await db.pool.query("ALTER TABLE archive.journal OWNER TO ledger_keeper");
    const { rows } = await db.pool.query(
      `SELECT c.relname, c.relnamespace::regnamespace::text AS nsp, c.relowner::regrole::text AS owner
         FROM offload.segments s JOIN pg_class c ON c.oid = s.segment_table
        WHERE s.state = 'committed' AND s.table_id = 'archive.journal'::regclass`,
    );
    expect(rows.length).toBeGreaterThan(1);
    for (const r of rows) {
      expect(r).toMatchObject({ nsp: "archive", owner: "ledger_keeper" });
      expect(r.relname).toMatch(/^journal__/);
    }
    // Nothing is left behind in the old schema for a DROP SCHEMA to take with it.
    const left = await db.pool.query(
      "SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname LIKE 'ledger\\_\\_%'",
    );
    expect(left.rows[0].n).toBe(0);
    await expectSameAsControl(db.pool, "archive.journal", "ledger_control");
    await db.pool.query("ALTER TABLE archive.journal SET SCHEMA public");
    await db.pool.query("ALTER TABLE journal RENAME TO ledger");
  });

  it("after detaching the policy the time column may be renamed", async () => {
    await db.pool.query("SELECT offload.detach_policy('ledger')");
    await alterBoth(db.pool, "ALTER TABLE %s RENAME COLUMN created_at TO happened_at");
    await expectSameAsControl(db.pool);
    const { rows } = await db.pool.query(
      "SELECT DISTINCT key_column FROM offload.segments WHERE table_id = 'ledger'::regclass AND state = 'committed'",
    );
    expect(rows).toEqual([{ key_column: "happened_at" }]);
  });

  it("TRUNCATE fails clearly; offload.truncate empties hot and cold rows", async () => {
    await expect(db.pool.query("TRUNCATE ledger")).rejects.toMatchObject({
      message: expect.stringMatching(/cannot truncate foreign table|does not allow truncates/),
    });
    expect(
      Number((await db.pool.query("SELECT count(*) FROM ledger")).rows[0].count),
    ).toBeGreaterThan(0);
    const { rows } = await db.pool.query("SELECT offload.truncate('ledger') AS cold");
    expect(Number(rows[0].cold)).toBeGreaterThan(0);
    expect(Number((await db.pool.query("SELECT count(*) FROM ledger")).rows[0].count)).toBe(0);
    const left = await db.pool.query(
      "SELECT count(*)::int AS n FROM offload.segments WHERE table_id = 'ledger'::regclass AND state = 'committed'",
    );
    expect(left.rows[0].n).toBe(0);
    expect(await segmentTables(db.pool, "ledger")).toEqual([]);
  });
});

describe("schema changes that follow constraints, type changes and quoted names", () => {
  const fixtureDb = offloadedLedgerPerCase("schema-changes-more");
  let db: TestDatabase;
  beforeEach(() => {
    db = fixtureDb.db();
  });

  // The columns e and f added in the first step are what the later steps constrain and convert.
  it("follows NOT NULL, constraints and type changes of columns added after the offload", async () => {
    await step(
      "after SET NOT NULL, later ADD COLUMNs work and a volatile default gets its refusal",
      async () => {
        await alterBoth(db.pool, "ALTER TABLE %s ALTER COLUMN feeling SET NOT NULL");
        await alterBoth(db.pool, "ALTER TABLE %s ADD COLUMN e text DEFAULT 'abc'");
        await alterBoth(db.pool, "ALTER TABLE %s ADD COLUMN f int");
        await expect(
          db.pool.query("ALTER TABLE ledger ADD COLUMN c timestamptz DEFAULT clock_timestamp()"),
        ).rejects.toMatchObject({ code: "0A000", message: expect.stringMatching(/volatile/) });
        // NOT NULL is checked again after it was dropped, and only then.
        await alterBoth(db.pool, "ALTER TABLE %s ALTER COLUMN feeling DROP NOT NULL");
        await alterBoth(db.pool, "ALTER TABLE %s ALTER COLUMN feeling SET NOT NULL");
        await expect(
          onColdRowsOnly(db.pool, "ALTER TABLE ledger ALTER COLUMN n SET NOT NULL"),
        ).rejects.toMatchObject({
          code: "23502",
          message: expect.stringMatching(/NOT NULL on column "n"/),
        });
        await expectSameAsControl(db.pool);
      },
    );

    await step(
      "constraints on columns added after the offload are checked against their one value",
      async () => {
        await alterBoth(db.pool, "ALTER TABLE %s ADD COLUMN g int DEFAULT 0 CHECK (g >= 0)");
        await alterBoth(db.pool, "ALTER TABLE %s ALTER COLUMN e SET NOT NULL");
        await expect(
          onColdRowsOnly(db.pool, "ALTER TABLE ledger ADD COLUMN h int DEFAULT -1 CHECK (h >= 0)"),
        ).rejects.toMatchObject({
          code: "23514",
          message: expect.stringMatching(/violate check constraint/),
        });
        await expect(
          onColdRowsOnly(db.pool, "ALTER TABLE ledger ALTER COLUMN f SET NOT NULL"),
        ).rejects.toMatchObject({
          code: "23502",
          message: expect.stringMatching(/NOT NULL on column "f"/),
        });
        // A constraint that reads stored columns cannot be checked while the same transaction has
        // added or dropped columns: the bridge serves the columns as committed.
        await expect(
          db.pool.query(
            "ALTER TABLE ledger ADD COLUMN k int, ADD CONSTRAINT big_ids CHECK (id > 0)",
          ),
        ).rejects.toMatchObject({
          code: "0A000",
          message: expect.stringMatching(/in the transaction that adds or drops columns/),
        });
        const client = await db.pool.connect();
        try {
          await client.query("BEGIN");
          await client.query("ALTER TABLE ledger DROP COLUMN f");
          await expect(
            client.query("ALTER TABLE ledger ADD CONSTRAINT big_ids CHECK (id > 0)"),
          ).rejects.toMatchObject({ code: "0A000" });
        } finally {
          await client.query("ROLLBACK");
          client.release();
        }
        await alterBoth(db.pool, "ALTER TABLE %s ADD CONSTRAINT big_ids CHECK (id > 0)");
        await expectSameAsControl(db.pool);
      },
    );

    await step(
      "a column added after the offload converts its value as ALTER COLUMN ... TYPE does",
      async () => {
        // Hot rows refuse it too: 'abc' is too long for varchar(2).
        await expect(
          db.pool.query("ALTER TABLE ONLY ledger_control ALTER COLUMN e TYPE varchar(2)"),
        ).rejects.toMatchObject({ message: expect.stringMatching(/too long/) });
        await expect(
          onColdRowsOnly(db.pool, "ALTER TABLE ledger ALTER COLUMN e TYPE varchar(2)"),
        ).rejects.toMatchObject({ message: expect.stringMatching(/"e" .* 'abc'.*too long/s) });
        await alterBoth(db.pool, "ALTER TABLE %s ALTER COLUMN e TYPE varchar(3)");
        await alterBoth(db.pool, "ALTER TABLE %s ADD COLUMN r float8 DEFAULT 2.5");
        await alterBoth(db.pool, "ALTER TABLE %s ALTER COLUMN r TYPE int");
        await alterBoth(db.pool, "ALTER TABLE %s ADD COLUMN d date DEFAULT '2024-02-29'");
        await alterBoth(db.pool, "ALTER TABLE %s ALTER COLUMN d TYPE text");
        await alterBoth(db.pool, "ALTER TABLE %s ADD COLUMN b char(4) DEFAULT 'xy'");
        await alterBoth(db.pool, "ALTER TABLE %s ALTER COLUMN b TYPE varchar(4)");
        await expectSameAsControl(db.pool);
      },
    );
  });

  it("defaults are evaluated under the session's time zone, as for the hot rows", async () => {
    const client = await db.pool.connect();
    try {
      await client.query("SET TimeZone = 'Etc/GMT-14'");
      await client.query("BEGIN");
      await client.query("ALTER TABLE ledger ADD COLUMN local_at timestamp DEFAULT now()");
      await client.query("ALTER TABLE ledger_control ADD COLUMN local_at timestamp DEFAULT now()");
      await client.query("COMMIT");
    } finally {
      // Ends the transaction had a statement failed (a warning otherwise).
      await client.query("ROLLBACK");
      await client.query("RESET TimeZone");
      client.release();
    }
    await expectSameAsControl(db.pool);
  });

  it("SET SCHEMA and OWNER TO with names that need quoting", async () => {
    await db.pool.query(`CREATE SCHEMA "Arch ive"; CREATE ROLE "Ops"`);
    await db.pool.query(`ALTER TABLE ledger SET SCHEMA "Arch ive"`);
    await db.pool.query(`ALTER TABLE "Arch ive".ledger OWNER TO "Ops"`);
    const { rows } = await db.pool.query(
      `SELECT c.relnamespace::regnamespace::text AS nsp, c.relowner::regrole::text AS owner
         FROM offload.segments s JOIN pg_class c ON c.oid = s.segment_table
        WHERE s.state = 'committed' AND s.table_id = '"Arch ive".ledger'::regclass`,
    );
    expect(rows.length).toBeGreaterThan(1);
    for (const r of rows) expect(r).toEqual({ nsp: '"Arch ive"', owner: '"Ops"' });
    await expectSameAsControl(db.pool, '"Arch ive".ledger', "ledger_control");
  });
});

describe("schema changes on a partitioned table with offloaded partitions", () => {
  let db: TestDatabase;
  let bridge: RunningBridge;
  let cleanupStore: () => Promise<void>;

  beforeAll(async () => {
    db = await createTestDatabase("schema-changes-partitioned");
    const store = await testStoreConfig("s3");
    cleanupStore = store.cleanup;
    bridge = await startTestBridge(db.url, store.config);
    await db.pool.query(fixture("partitioned-table.sql"));
    await db.pool.query("CREATE TABLE metrics_control AS SELECT * FROM metrics");
    await db.pool.query(
      "SELECT offload.define_policy('metrics_cold', 'created_at', interval '60 days'); SELECT offload.attach_policy('metrics', 'metrics_cold')",
    );
    expect((await offloadNow(db.pool, "metrics")).state).toBe("succeeded");
  });

  afterAll(async () => {
    await bridge?.stop();
    await db?.drop();
    await cleanupStore?.();
  });

  it("ADD, DROP, RENAME and widen columns; offloaded partitions agree with the control", async () => {
    await alterBoth(db.pool, "ALTER TABLE %s ADD COLUMN site text DEFAULT 'north'", "metrics");
    await alterBoth(db.pool, "ALTER TABLE %s DROP COLUMN note", "metrics");
    await alterBoth(db.pool, "ALTER TABLE %s RENAME COLUMN device TO sensor", "metrics");
    await alterBoth(db.pool, "ALTER TABLE %s ALTER COLUMN sensor TYPE bigint", "metrics");
    await expectSameAsControl(db.pool, "metrics");
    // Partitions offloaded after the changes, and loading them back, too.
    await db.pool.query("SELECT offload.detach_policy('metrics')");
    await db.pool.query(
      "SELECT offload.define_policy('metrics_colder', 'created_at', interval '30 days'); SELECT offload.attach_policy('metrics', 'metrics_colder')",
    );
    expect((await offloadNow(db.pool, "metrics")).state).toBe("succeeded");
    await expectSameAsControl(db.pool, "metrics");
    await db.pool.query("SELECT offload.load_back('metrics')");
    expect(
      (await db.pool.query("SELECT count(*)::int AS n FROM pg_class WHERE relkind = 'f'")).rows[0]
        .n,
    ).toBe(0);
    expect(await resultSet(db.pool, "SELECT * FROM metrics ORDER BY id")).toEqual(
      await resultSet(db.pool, "SELECT * FROM metrics_control ORDER BY id"),
    );
  });
});

describe.skipIf(!pgDumpPath("dump and restore", "same-or-older-server"))(
  "pg_dump and pg_restore of a database with offloaded tables",
  () => {
    let db: TestDatabase;
    let restored: TestDatabase;
    let cleanupStore: () => Promise<void>;
    const bridges: RunningBridge[] = [];

    beforeAll(async () => {
      db = await createTestDatabase("dump-source", { reader: "file_fdw" });
      restored = await createEmptyDatabase("dump-target");
    });

    afterAll(async () => {
      for (const bridge of bridges) await bridge.stop();
      await db?.drop();
      await restored?.drop();
      await cleanupStore?.();
    });

    it("restores a working database that reads the same cold rows from the same store", async () => {
      const store = await testStoreConfig("local");
      cleanupStore = store.cleanup;
      const overrides = { segmentTargetBytes: 128 * 1024, chunkBytes: 32 * 1024 };
      const source = await startTestBridge(db.url, store.config, { overrides });
      bridges.push(source);
      await db.pool.query(fixture("schema-table.sql"));
      expect((await offloadNow(db.pool, "ledger")).state).toBe("succeeded");
      // Dropped columns make the restore renumber the columns of every segment table.
      await alterBoth(
        db.pool,
        "ALTER TABLE %s DROP COLUMN n, ADD COLUMN added text DEFAULT 'then'",
      );
      await alterBoth(db.pool, "ALTER TABLE %s RENAME COLUMN label TO title");
      await expectSameAsControl(db.pool);
      const before = await resultSet(db.pool, "SELECT * FROM ledger ORDER BY id");

      const dumpDir = await mkdtemp(join(tmpdir(), "pg-offload-dump-"));
      const dumpFile = join(dumpDir, "db.dump");
      try {
        await run(pgDumpPath(undefined, "same-or-older-server")!, [
          "--format=custom",
          `--file=${dumpFile}`,
          db.url,
        ]);
        await run(serverTool("pg_restore", undefined, "same-or-older-server")!, [
          "--exit-on-error",
          `--dbname=${restored.url}`,
          dumpFile,
        ]);
      } finally {
        await rm(dumpDir, { recursive: true, force: true });
      }
      const target = await startTestBridge(restored.url, store.config, { overrides });
      bridges.push(target);
      // The dump holds the source's bridge endpoints, and that bridge still runs, serving the
      // source's segments under the same ids: the restored segment tables must never name it.
      const readers = await restored.pool.query(
        "SELECT array_to_string(ftoptions, ' ') AS options FROM pg_foreign_table",
      );
      expect(readers.rows.length).toBeGreaterThan(0);
      for (const { options } of readers.rows) {
        if (source.endpoint.kind !== "unix" || target.endpoint.kind !== "unix") throw new Error();
        expect(options).toContain(target.endpoint.socketPath);
        expect(options).not.toContain(source.endpoint.socketPath);
      }
      await source.stop();
      bridges.splice(bridges.indexOf(source), 1);
      expect(await resultSet(restored.pool, "SELECT * FROM ledger ORDER BY id")).toEqual(before);
      await expectSameAsControl(restored.pool);
      const verified = await restored.pool.query(
        "SELECT bool_and(ok) AS ok FROM offload.verify('ledger')",
      );
      expect(verified.rows[0].ok).toBe(true);

      // The restored database follows schema changes, and writes under keys of its own.
      await alterBoth(
        restored.pool,
        "ALTER TABLE %s ADD COLUMN later int DEFAULT 42, DROP COLUMN doc",
      );
      await alterBoth(restored.pool, "ALTER TABLE %s RENAME COLUMN added TO added_then");
      await expectSameAsControl(restored.pool);
      await alterBoth(
        restored.pool,
        "UPDATE ONLY %s SET created_at = created_at - interval '30 days' WHERE id > 2900",
      );
      expect((await offloadNow(restored.pool, "ledger")).state).toBe("succeeded");
      await expectSameAsControl(restored.pool);
      const prefixes = await restored.pool.query(
        `SELECT DISTINCT split_part(c.object_key, '/', 1) AS prefix, i.superseded_at IS NULL AS current
         FROM offload.chunks c JOIN offload.installation i ON i.id = split_part(c.object_key, '/', 1)
        ORDER BY 2`,
      );
      expect(prefixes.rows.map((r) => r.current)).toEqual([false, true]);
    });
  },
);
