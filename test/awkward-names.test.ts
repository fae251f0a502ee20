import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningBridge } from "../bridge/bridge.ts";
import { startTestBridge, testStoreConfig, waitForJob } from "./support/bridge-harness.ts";
import { resultSet } from "./support/fixtures.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

// Schema, table and columns named with quotes, spaces, a semicolon, unicode and upper case.
const SCHEMA = `"Sché ma; x"`;
const TABLE = `${SCHEMA}."Évé""nts; DROP TABLE x"`;

describe("identifiers that need quoting, end to end", () => {
  let db: TestDatabase;
  let bridge: RunningBridge;
  let cleanupStore: () => Promise<void>;

  beforeAll(async () => {
    db = await createTestDatabase("awkward-names");
    const store = await testStoreConfig("local");
    cleanupStore = store.cleanup;
    bridge = await startTestBridge(db.url, store.config, {
      overrides: { segmentTargetBytes: 64 * 1024, chunkBytes: 16 * 1024 },
    });
    await db.pool.query(`
      CREATE SCHEMA ${SCHEMA};
      CREATE TABLE ${TABLE} ("Id" bigint PRIMARY KEY, "Créé le" timestamptz NOT NULL, "a""b; c" text);
      INSERT INTO ${TABLE} SELECT i, now() - (2000 - i) * interval '1 hour', 'v' || i
        FROM generate_series(1, 2000) i;
      CREATE TABLE "Control" AS SELECT * FROM ${TABLE};`);
    await db.pool.query(
      `SELECT offload.define_policy('Pol "1"; x', time_column => 'Créé le', older_than => interval '10 days', zone_map_columns => '{"a\\"b; c"}')`,
    );
    await db.pool.query("SELECT offload.attach_policy($1, 'Pol \"1\"; x')", [TABLE]);
  });

  afterAll(async () => {
    await bridge?.stop();
    await db?.drop();
    await cleanupStore?.();
  });

  it("offloads, reads, alters, rewrites and loads back", async () => {
    const run = await db.pool.query("SELECT offload.run($1) AS id", [TABLE]);
    expect((await waitForJob(db.pool, Number(run.rows[0].id))).state).toBe("succeeded");
    const same = async () =>
      expect(await resultSet(db.pool, `SELECT * FROM ${TABLE} ORDER BY "Id"`)).toEqual(
        await resultSet(db.pool, `SELECT * FROM "Control" ORDER BY "Id"`),
      );
    const cold = await db.pool.query(
      `SELECT count(*)::int AS n FROM ${TABLE} WHERE tableoid <> $1::regclass`,
      [TABLE],
    );
    expect(cold.rows[0].n).toBeGreaterThan(1000);
    await same();

    for (const t of [TABLE, `"Control"`]) {
      await db.pool.query(`ALTER TABLE ${t} ADD COLUMN "Nøte ""x""" text DEFAULT 'd;"'`);
    }
    await same();
    const del = await db.pool.query("SELECT offload.delete_cold($1, $2) AS id", [
      TABLE,
      `"Id" % 7 = 0`,
    ]);
    expect((await waitForJob(db.pool, Number(del.rows[0].id))).state).toBe("succeeded");
    await db.pool.query(`DELETE FROM "Control" WHERE "Id" % 7 = 0`);
    await db.pool.query(`DELETE FROM ONLY ${TABLE} WHERE "Id" % 7 = 0`);
    await same();
    const verify = await db.pool.query("SELECT bool_and(ok) AS ok FROM offload.verify($1)", [
      TABLE,
    ]);
    expect(verify.rows[0].ok).toBe(true);
    await db.pool.query("SELECT offload.load_back($1)", [TABLE]);
    await same();
  });
});
