import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testStoreConfig } from "../support/bridge-harness.ts";
import { quickBridgeEnv, spawnBridge } from "../support/bridge-process.ts";
import { duplicatedIds, tableDigest } from "../support/digest.ts";
import { fixture, segmentTables } from "../support/fixtures.ts";
import { waitUntil } from "../support/wait.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";

const tally = { kills: 0, rowsChecked: 0 };

/** A whole-table digest, counting the rows it covered for the summary line. */
async function countedDigest(db: pg.Pool, table: string): Promise<string> {
  const digest = await tableDigest(db, table);
  tally.rowsChecked += Number(digest.split(":")[0]);
  return digest;
}

afterAll(() => {
  console.log(
    `FAULTS crash: kills=${tally.kills} runs=${tally.kills} rows_checked=${tally.rowsChecked}`,
  );
});

// Where the bridge dies: before any upload, between uploads (first and a later segment), with all
// chunks stored but nothing committed, and right after a commit (before the job is marked done).
const FAILPOINTS = [
  "after-begin-segment",
  "after-chunk-upload@2",
  "after-chunk-upload@9",
  "before-commit",
  "after-commit@2",
];

describe("the bridge killed with SIGKILL in the middle of an offload", () => {
  let db: TestDatabase;
  let cleanupStore: () => Promise<void>;
  let env: Record<string, string>;
  let digest: string;

  beforeAll(async () => {
    db = await createTestDatabase("crash");
    const store = await testStoreConfig("local");
    cleanupStore = store.cleanup;
    if (store.config.kind !== "local") throw new Error("unreachable");
    env = quickBridgeEnv(db.url, store.config.dir);
    await db.pool.query(fixture("events-table.sql"));
    digest = await countedDigest(db.pool, "events");
  });

  afterAll(async () => {
    await db?.drop();
    await cleanupStore?.();
  });

  it.each(FAILPOINTS)(
    "dies at %s: nothing lost or doubled, and a restart finishes the job",
    async (point) => {
      await db.pool.query("SELECT offload.run('events')");
      const doomed = spawnBridge({ ...env, PGOFFLOAD_FAILPOINT: point });
      const { signal } = await doomed.exited;
      expect(signal, doomed.output()).toBe("SIGKILL");
      tally.kills++;

      // Committed segments need a bridge to be read: check the state the crash left as soon as
      // the next bridge serves reads (its takeover of the job waits for the lease to expire).
      const survivor = spawnBridge(env);
      try {
        await waitUntil(
          async () =>
            await db.pool.query("SELECT 1 FROM events LIMIT 1").then(
              () => true,
              () => false,
            ),
        );
        expect(await countedDigest(db.pool, "events")).toBe(digest);
        expect(await duplicatedIds(db.pool, "events")).toBe(0);

        await waitUntil(async () => {
          const { rows } = await db.pool.query(
            "SELECT state FROM offload.jobs ORDER BY id DESC LIMIT 1",
          );
          return rows[0]?.state === "succeeded";
        });
        expect(await countedDigest(db.pool, "events")).toBe(digest);
        expect(await duplicatedIds(db.pool, "events")).toBe(0);
        const { rows } = await db.pool.query(
          "SELECT count(*)::int AS n FROM ONLY events WHERE created_at < now() - interval '30 days 1 minute'",
        );
        expect(rows[0].n).toBe(0);
        const committed = await db.pool.query(
          "SELECT count(*)::int AS n FROM offload.segments WHERE state = 'committed'",
        );
        expect((await segmentTables(db.pool, "events")).length).toBe(committed.rows[0].n);

        // Put the rows back hot for the next failpoint (reading them needs the bridge).
        await moveEverythingBackHot(db);
      } finally {
        await survivor.kill("SIGTERM");
      }
      expect(await countedDigest(db.pool, "events")).toBe(digest);
    },
  );
});

// Copies cold rows into the heap and drops the segments, without offload.load_back (which has
// crash tests of its own below), so that each failpoint starts from the same all-hot table.
async function moveEverythingBackHot(db: TestDatabase): Promise<void> {
  const client = await db.pool.connect();
  try {
    await client.query("BEGIN");
    const { rows } = await client.query(
      "SELECT segment_table::text AS t FROM offload.segments WHERE state = 'committed'",
    );
    for (const { t } of rows) {
      await client.query(`INSERT INTO events SELECT * FROM ${t}`);
      await client.query(`DROP FOREIGN TABLE ${t}`);
    }
    await client.query("DELETE FROM offload.segments");
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK");
    throw error;
  } finally {
    client.release();
  }
}

describe("the bridge killed in the middle of a load_back and of a rewrite", () => {
  let db: TestDatabase;
  let cleanupStore: () => Promise<void>;
  let env: Record<string, string>;
  let digest: string;

  beforeAll(async () => {
    db = await createTestDatabase("crash-lifecycle");
    const store = await testStoreConfig("local");
    cleanupStore = store.cleanup;
    if (store.config.kind !== "local") throw new Error("unreachable");
    env = quickBridgeEnv(db.url, store.config.dir);
    await db.pool.query(fixture("events-table.sql"));
    digest = await countedDigest(db.pool, "events");
    const bridge = spawnBridge(env);
    try {
      await db.pool.query("SELECT offload.run('events')");
      await waitUntil(async () => {
        const { rows } = await db.pool.query(
          "SELECT state FROM offload.jobs ORDER BY id DESC LIMIT 1",
        );
        return rows[0]?.state === "succeeded";
      });
    } finally {
      await bridge.kill("SIGTERM");
    }
  });

  afterAll(async () => {
    await db?.drop();
    await cleanupStore?.();
  });

  it("load_back fails cleanly when the bridge dies mid-read, and succeeds after a restart", async () => {
    const segmentsBefore = await segmentTables(db.pool, "events");
    expect(segmentsBefore.length).toBeGreaterThan(2);
    const doomed = spawnBridge({ ...env, PGOFFLOAD_FAILPOINT: "after-chunk-served@8" });
    await waitUntil(async () => doomed.output().includes("bridge started"));
    await expect(db.pool.query("SELECT offload.load_back('events')")).rejects.toThrow(
      /program .* failed|extra data|curl|server closed the connection/,
    );
    expect((await doomed.exited).signal).toBe("SIGKILL");
    tally.kills++;

    const survivor = spawnBridge(env);
    try {
      await waitUntil(async () => survivor.output().includes("bridge started"));
      expect(await segmentTables(db.pool, "events")).toEqual(segmentsBefore);
      expect(await countedDigest(db.pool, "events")).toBe(digest);
      await db.pool.query("SELECT offload.load_back('events')");
      expect(await segmentTables(db.pool, "events")).toEqual([]);
      expect(await countedDigest(db.pool, "events")).toBe(digest);
      expect(await duplicatedIds(db.pool, "events")).toBe(0);

      // Offload again for the rewrite below.
      await db.pool.query("SELECT offload.run('events')");
      await waitUntil(async () => {
        const { rows } = await db.pool.query(
          "SELECT state FROM offload.jobs ORDER BY id DESC LIMIT 1",
        );
        return rows[0]?.state === "succeeded";
      });
    } finally {
      await survivor.kill("SIGTERM");
    }
  });

  // Each case deletes other rows (id % 97 = residue), so that every case has rows to rewrite.
  it.each([
    ["after-chunk-upload@2", 11],
    ["before-swap@1", 12],
    ["before-swap@2", 13],
  ] as const)(
    "a rewrite killed at %s: nothing changes until a restart completes it exactly once",
    async (point, residue) => {
      const condition = `id % 97 = ${residue}`;
      const expected = await tableDigestWithBridge(
        env,
        db,
        `(SELECT * FROM events WHERE NOT (${condition}) OR tableoid = 'events'::regclass)`,
      );
      const doomed = spawnBridge({ ...env, PGOFFLOAD_FAILPOINT: point });
      const jobId = Number(
        (await db.pool.query("SELECT offload.delete_cold('events', $1) AS id", [condition])).rows[0]
          .id,
      );
      expect((await doomed.exited).signal, doomed.output()).toBe("SIGKILL");
      tally.kills++;

      // The survivor serves the reads of the digest below but must not take the job over yet:
      // a claim skips a job row locked by another transaction.
      const hold = await db.pool.connect();
      await hold.query("BEGIN");
      await hold.query("SELECT FROM offload.jobs WHERE id = $1 FOR UPDATE", [jobId]);
      const release = once(async () => {
        await hold.query("COMMIT");
        hold.release();
      });
      const survivor = spawnBridge(env);
      try {
        await waitUntil(async () => survivor.output().includes("bridge started"));
        // Segments the killed bridge swapped are rewritten, the others not yet: never a
        // half-rewritten one. Which segments those are depends on where the kill fell (the
        // segments' cuts follow the heap's size, which the earlier load back left bloated).
        const [mid, midExpected] = await midRewriteDigests(db, jobId, condition).finally(release);
        expect(mid).toBe(midExpected);
        await waitUntil(async () => {
          const { rows } = await db.pool.query("SELECT state FROM offload.jobs WHERE id = $1", [
            jobId,
          ]);
          return rows[0]?.state === "succeeded";
        });
        expect(await countedDigest(db.pool, "events")).toBe(expected);
        expect(await duplicatedIds(db.pool, "events")).toBe(0);
      } finally {
        await release();
        await survivor.kill("SIGTERM");
      }
    },
  );
});

/**
 * While a rewrite job is held (no bridge can take it on): the table's digest, and what it must be,
 * the rows matching `condition` gone from the segments the job has swapped and only from those.
 */
async function midRewriteDigests(
  db: TestDatabase,
  jobId: number,
  condition: string,
): Promise<[string, string]> {
  const { rows } = await db.pool.query(
    `SELECT coalesce(array_agg(s.segment_table::oid), '{}') AS oids
       FROM offload.rewritten_segments r JOIN offload.segments s ON s.id = r.segment_id
      WHERE r.job_id = $1`,
    [jobId],
  );
  const swapped = `'{${(rows[0].oids as Array<number | string>).join(",")}}'::oid[]`;
  const mid = await countedDigest(db.pool, "events");
  const midExpected = await countedDigest(
    db.pool,
    `(SELECT * FROM events WHERE NOT (${condition}) OR tableoid <> ALL (${swapped}))`,
  );
  return [mid, midExpected];
}

/** A function that does its work the first time it is called, and nothing after. */
function once(work: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= work());
}

async function tableDigestWithBridge(
  env: Record<string, string>,
  db: TestDatabase,
  table: string,
): Promise<string> {
  const bridge = spawnBridge(env);
  try {
    await waitUntil(async () => bridge.output().includes("bridge started"));
    return await countedDigest(db.pool, table);
  } finally {
    await bridge.kill("SIGTERM");
  }
}
