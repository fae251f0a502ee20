// The differential tester: generated queries over every column type of the awkward-value fixture,
// on offloaded tables (plain and partitioned) through each way of offloading, against the same
// rows never offloaded. Every answer must be identical (rows as text, or the same error code).
//
//   DIFF_SEED=N      the run's seed (default: random; printed at the start and in every failure)
//   DIFF_QUERIES=N   queries per table (default 250)
//   DIFF_ONLY=N      only query number N (with the failure's seed, to rerun just that query)
//
// The long run: npm run test:differential -- --queries 5000 --seed N
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";
import { difference, runOnBoth } from "./compare.ts";
import {
  createTables,
  generatorContext,
  OFFLOAD_WAYS,
  REFERENCE_TABLE,
  TARGETS,
} from "./differential-setup.ts";
import { forTable, generateQuery, type GeneratorContext } from "./query-generator.ts";

const SEED = process.env.DIFF_SEED
  ? Number(process.env.DIFF_SEED)
  : Math.floor(Math.random() * 2 ** 31);
const QUERIES = Number(process.env.DIFF_QUERIES ?? 250);
const ONLY = process.env.DIFF_ONLY === undefined ? undefined : Number(process.env.DIFF_ONLY);
/** Failures reported at most per table: enough to see a pattern, not a wall of text. */
const MAX_FAILURES = 5;

console.log(
  `differential: seed ${SEED} (rerun with DIFF_SEED=${SEED}), ${QUERIES} queries per table`,
);

describe.each(OFFLOAD_WAYS)("differential: offloaded by $name vs never offloaded", (way) => {
  let db: TestDatabase;
  let ctx: GeneratorContext;
  let stop: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    db = await createTestDatabase(`differential-${way.name}`);
    await createTables(db);
    ctx = await generatorContext(db);
    ({ stop } = await way.offload(
      db,
      TARGETS.map((t) => t.table),
    ));
  });

  afterAll(async () => {
    await stop?.();
    await db?.drop();
  });

  it.each(TARGETS)(
    "$name table: most rows are cold, in several foreign tables",
    async ({ table }) => {
      const { rows } = await db.pool.query(
        `SELECT count(*)::int AS rows, count(DISTINCT tableoid)::int AS tables FROM ${table}
        WHERE tableoid IN (SELECT oid FROM pg_class WHERE relkind = 'f')`,
      );
      expect(rows[0].rows).toBeGreaterThan(3000 / 2);
      expect(rows[0].tables).toBeGreaterThan(1);
      if (way.name === "postgres_fdw" && table === "awkward") {
        // Its segments were merged to the policy's bound (differential-setup.ts).
        const merged = await db.pool.query(
          "SELECT count(*)::int AS n FROM offload.segments WHERE merged_into IS NOT NULL",
        );
        expect(rows[0].tables).toBeLessThanOrEqual(3);
        expect(merged.rows[0].n).toBeGreaterThan(1);
      }
    },
  );

  it.each(TARGETS)(
    "$name table: every generated query gives the same answer",
    async ({ name, table }) => {
      const started = Date.now();
      const failures: string[] = [];
      const errorCodes = new Map<string, number>();
      let rows = 0;
      let empty = 0;
      let ran = 0;
      const client = await db.pool.connect();
      try {
        const [first, end] = ONLY === undefined ? [0, QUERIES] : [ONLY, ONLY + 1];
        for (let n = first; n < end && failures.length < MAX_FAILURES; n++) {
          const query = generateQuery(SEED, n, ctx);
          ran++;
          const [offloaded, reference] = await runOnBoth(client, query, table, REFERENCE_TABLE);
          if ("rows" in reference) {
            rows += reference.rows.length;
            if (reference.rows.length === 0) empty++;
          } else
            errorCodes.set(reference.error.code, (errorCodes.get(reference.error.code) ?? 0) + 1);
          const diff = difference(offloaded, reference);
          if (diff === undefined) continue;
          failures.push(
            `seed ${SEED}, query ${n} (${query.kind}; rerun: DIFF_SEED=${SEED} DIFF_ONLY=${n} ` +
              `npx vitest run test/differential/differential.test.ts)\n` +
              (query.settings.length > 0 ? `${query.settings.join("; ")};\n` : "") +
              `${forTable(query, table)}\n${diff}`,
          );
        }
      } finally {
        client.release();
      }
      const errors = [...errorCodes].map(([code, count]) => `${code}×${count}`).join(" ") || "none";
      console.log(
        `DIFFERENTIAL ${way.name}/${name}: seed=${SEED} queries=${ran} rows=${rows}` +
          ` empty_answers=${empty} errors_on_both=${errors} failures=${failures.length} in ${Date.now() - started} ms`,
      );
      expect(failures, `different answers (seed ${SEED}):\n\n${failures.join("\n\n")}`).toEqual([]);
    },
    // The long run's thousands of queries need more than the default minute.
    Math.max(120_000, QUERIES * 500),
  );
});
