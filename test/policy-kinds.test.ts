import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningBridge } from "../bridge/bridge.ts";
import { offloadNow, startTestBridge, testStoreConfig } from "./support/bridge-harness.ts";
import { duplicatedIds } from "./support/digest.ts";
import { resultSet } from "./support/fixtures.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

type Shape = "plain" | "partitioned";
type Kind = "older_than" | "keep_last" | "idle_for" | "keep_hot";

const POLICIES: Record<Kind, string> = {
  older_than: "time_column => 'at', older_than => interval '60 days'",
  keep_last: "time_column => 'id', keep_last => 500",
  idle_for: "time_column => 'at', idle_for => interval '1 second'",
  keep_hot: "time_column => 'at', keep_hot_bytes => 60000",
};

// 2,000 rows, one every 2.4 hours over 200 days; id 1..2000 in time order.
function createTable(name: string, shape: Shape, kind: Kind): string {
  const byId = kind === "keep_last";
  const partitions = byId
    ? `SELECT format('CREATE TABLE %I PARTITION OF ${name} FOR VALUES FROM (%s) TO (%s)',
              '${name}_' || lo, lo, lo + 250) FROM generate_series(1, 2251, 250) lo`
    : `SELECT format('CREATE TABLE %I PARTITION OF ${name} FOR VALUES FROM (%L) TO (%L)',
              '${name}_' || to_char(m, 'YYYYMM'), m, m + interval '1 month')
         FROM generate_series(date_trunc('month', now() - interval '7 months'),
                              date_trunc('month', now() + interval '1 month'), interval '1 month') m`;
  return `
    CREATE TABLE ${name} (id bigint NOT NULL, at timestamptz NOT NULL, v text)
      ${shape === "partitioned" ? `PARTITION BY RANGE (${byId ? "id" : "at"})` : ""};
    ${shape === "partitioned" ? `DO $$ DECLARE s text; BEGIN FOR s IN ${partitions} LOOP EXECUTE s; END LOOP; END $$;` : ""}
    INSERT INTO ${name}
    SELECT i, now() - (2000 - i) * interval '2.4 hours', repeat(md5(i::text), 2)
      FROM generate_series(1, 2000) i;
    ANALYZE ${name};`;
}

const CASES = (["plain", "partitioned"] as Shape[]).flatMap((shape) =>
  (Object.keys(POLICIES) as Kind[]).map((kind) => ({ shape, kind, table: `${shape}_${kind}` })),
);

describe("every policy kind on both table shapes", () => {
  let db: TestDatabase;
  let bridge: RunningBridge;
  let cleanupStore: () => Promise<void>;

  beforeAll(async () => {
    db = await createTestDatabase("policy-kinds");
    const store = await testStoreConfig("local");
    cleanupStore = store.cleanup;
    bridge = await startTestBridge(db.url, store.config, {
      overrides: { segmentTargetBytes: 96 * 1024 },
    });
  });

  afterAll(async () => {
    await bridge?.stop();
    await db?.drop();
    await cleanupStore?.();
  });

  it.each(CASES)("$kind on a $shape table", async ({ shape, kind, table }) => {
    await db.pool.query(createTable(table, shape, kind));
    const before = await resultSet(db.pool, `SELECT * FROM ${table} ORDER BY id`);
    // Which partitions must stay hot, derived from the README's rules and the table as made.
    const partitionsBefore = await heapPartitions(db, table);
    const expectedHotPartitions =
      shape === "plain"
        ? undefined
        : kind === "older_than"
          ? // Those whose upper bound (a month after the name's month) is past now - 60 days.
            partitionsBefore
              .filter((p) => p.monthEnd > Date.now() - 60 * 86_400_000)
              .map((p) => p.name)
          : kind === "keep_hot"
            ? // The oldest go until the heap partitions' bytes fit in 60,000.
              newestThatFit(partitionsBefore, 60_000)
            : undefined;
    await db.pool.query(
      `SELECT offload.define_policy('${table}_policy', ${POLICIES[kind]}, chunk_bytes => 8192, compression_level => 1)`,
    );
    await db.pool.query(`SELECT offload.attach_policy('${table}', '${table}_policy')`);

    let cold = 0;
    // idle_for needs two looks at the table's activity, a second apart (the statistics collector
    // also reports with a delay); the other kinds offload on the first run.
    for (let run = 0; run < 6 && cold === 0; run++) {
      if (run > 0) await new Promise((r) => setTimeout(r, 1_200));
      const job = await offloadNow(db.pool, table);
      expect(job.state, job.last_error ?? "").toBe("succeeded");
      cold = Number(
        (
          await db.pool.query(
            "SELECT coalesce(sum(rows), 0) AS n FROM offload.segments WHERE table_id = $1::regclass AND state = 'committed'",
            [table],
          )
        ).rows[0].n,
      );
    }
    expect(cold).toBeGreaterThan(0);
    expect(await resultSet(db.pool, `SELECT * FROM ${table} ORDER BY id`)).toEqual(before);
    expect(await duplicatedIds(db.pool, table)).toBe(0);

    const hot = await db.pool.query(
      shape === "plain"
        ? `SELECT count(*)::int AS n, min(id) AS min_id, sum(pg_column_size(t.*))::int AS bytes FROM ONLY ${table} t`
        : `SELECT count(*)::int AS n, min(id) AS min_id, 0 AS bytes FROM ${table} t
            WHERE tableoid IN (SELECT inhrelid FROM pg_inherits JOIN pg_class c ON c.oid = inhrelid
                                WHERE inhparent = '${table}'::regclass AND c.relkind = 'r')`,
    );
    const { n: hotRows, min_id: minHotId, bytes: hotBytes } = hot.rows[0];
    expect(hotRows + cold).toBe(2000);
    if (kind === "older_than" && shape === "plain") {
      // One row every 2.4 hours: the 600 rows of the last 60 days, exactly.
      expect({ hotRows, minHotId: Number(minHotId) }).toEqual({ hotRows: 600, minHotId: 1401 });
    }
    if (expectedHotPartitions) {
      expect(expectedHotPartitions.length).toBeGreaterThan(0);
      expect(expectedHotPartitions.length).toBeLessThan(partitionsBefore.length);
      expect((await heapPartitions(db, table)).map((p) => p.name)).toEqual(expectedHotPartitions);
    }
    if (kind === "keep_last") {
      // Ids 1501..2000; when partitioned, the 250-id partitions from 1501 on (1501 is a bound).
      expect({ hotRows, minHotId: Number(minHotId) }).toEqual({ hotRows: 500, minHotId: 1501 });
    }
    if (kind === "idle_for") expect(hotRows).toBe(0);
    if (kind === "keep_hot" && shape === "plain") {
      expect(hotBytes).toBeLessThanOrEqual(60_000 * 1.05);
      expect(hotBytes).toBeGreaterThan(60_000 * 0.9);
    }

    // The policy's own chunk size and compression level were used.
    const chunks = await db.pool.query(
      `SELECT max(c.raw_bytes) AS biggest, bool_and(c.codec = 'zstd') AS zstd
         FROM offload.chunks c JOIN offload.segments s ON s.id = c.segment_id
        WHERE s.table_id = '${table}'::regclass`,
    );
    expect(Number(chunks.rows[0].biggest)).toBeLessThan(8192 + 300);
    expect(chunks.rows[0].zstd).toBe(true);
  });
});

interface HeapPartition {
  name: string;
  bytes: number;
  /** For a monthly partition (named table_YYYYMM), the end of its month, in ms. */
  monthEnd: number;
}

/** The table's heap (hot) partitions, oldest first (their names sort by month). */
async function heapPartitions(db: TestDatabase, table: string): Promise<HeapPartition[]> {
  const { rows } = await db.pool.query(
    `SELECT c.relname AS name, pg_table_size(c.oid)::int AS bytes,
            extract(epoch FROM to_timestamp(right(c.relname, 6), 'YYYYMM') + interval '1 month')
              * 1000 AS month_end
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = $1::regclass AND c.relkind = 'r' AND c.relname ~ '_[0-9]{6}$'
      ORDER BY c.relname`,
    [table],
  );
  return rows.map((r) => ({ name: r.name, bytes: r.bytes, monthEnd: Number(r.month_end) }));
}

/** The partitions left once the oldest are taken until the rest fit in `allowance` bytes. */
function newestThatFit(partitions: HeapPartition[], allowance: number): string[] {
  let total = partitions.reduce((sum, p) => sum + p.bytes, 0);
  const left = [...partitions];
  while (total > allowance && left.length > 0) total -= left.shift()!.bytes;
  return left.map((p) => p.name);
}
