import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningBridge } from "../../bridge/bridge.ts";
import { startTestBridge, testStoreConfig, waitForJob } from "../support/bridge-harness.ts";
import { quickBridgeEnv, spawnPgOffload, type BridgeProcess } from "../support/bridge-process.ts";
import { duplicatedIds, tableDigest } from "../support/digest.ts";
import { segmentTables } from "../support/fixtures.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";
import { waitUntil } from "../support/wait.ts";

// Every bridge job kind (offload, delete_cold, update_cold) is run under every fault: the bridge
// killed (SIGKILL) at each of its steps; the commit (offload) or swap (rewrite) of the 1st, 2nd
// and last segment made to hit its lock timeout; the bridge stalled past its lease while another
// takes the job over. Then the job is finished, and the table must equal a control table that
// received the same change once, with plain SQL (update_cold's `v = v + 1` shows a segment
// changed twice), and every segment's epoch must have advanced once per rewrite that swapped it.
// rewrite_cold (every segment rewritten, no row changed) and the offload of a range-partitioned
// table (whole partitions replaced by foreign ones) get the faults around their 2nd commit or swap;
// the offload and update_cold kills that leave objects behind are run on the S3 store too. load_back and truncate run in the user's session: killed and timed out, they
// must change nothing, and a retry must change the table exactly once. Garbage collection is
// killed mid-way and must never remove an object a committed segment references.

const tally = { runs: 0, rowsChecked: 0 };

afterAll(() => {
  console.log(`FAULTS exactly-once: runs=${tally.runs} rows_checked=${tally.rowsChecked}`);
});

// Every process spawned here, ended after the file whatever happened (a failed case can leave a
// paused bridge behind, and a paused bridge holds up reads sent to its endpoint).
const spawned: BridgeProcess[] = [];
afterAll(async () => {
  for (const child of spawned) await child.kill("SIGKILL");
});

function spawnTracked(env: Record<string, string>, args = ["bridge"]): BridgeProcess {
  const child = spawnPgOffload(args, env);
  spawned.push(child);
  return child;
}

// One row an hour over 250 days: the last 30 days (720 rows) stay hot, the other 5,280 (about
// 450 kB of heap) make 4 segments of 128 kB, each of several 16 kB chunks: many steps to stop at.
const ROWS = 6_000;
const POLICY = `SELECT offload.define_policy('hourly_rows', time_column => 'created_at',
  older_than => interval '30 days', segment_bytes => 131072, chunk_bytes => 16384)`;
const LOCK_TIMEOUT_MS = 300;
const LEASE_MS = 600;

let db: TestDatabase;
let store: Awaited<ReturnType<typeof testStoreConfig>>;
let env: Record<string, string>;
let resumeDir: string;
let storeDir: string;
/** Chunks in the first segment of a table of this shape: the next chunk is in the 2nd segment. */
let firstSegmentChunks: number;
/** Every table a case finished with, and its control: garbage collection must keep them equal. */
const finished: { table: string; control: string }[] = [];

/** The table's digest, counted for the summary line. */
async function digest(table: string): Promise<string> {
  const value = await tableDigest(db.pool, table);
  tally.rowsChecked += Number(value.split(":")[0]);
  return value;
}

/** The table, hot and cold, holds exactly the control's rows, each once. */
async function expectEqualsControl(table: string, control: string): Promise<void> {
  const [actual, expected] = [await digest(table), await digest(control)];
  expect(actual, actual === expected ? "" : await difference(table, control)).toBe(expected);
  expect(await duplicatedIds(db.pool, table)).toBe(0);
}

/** What a failed comparison needs to be understood: how many rows differ, and a few of them. */
async function difference(table: string, control: string): Promise<string> {
  const { rows } = await db.pool.query(`
    SELECT (SELECT count(*) FROM (TABLE ${table} EXCEPT ALL TABLE ${control}) d) AS extra,
           (SELECT count(*) FROM (TABLE ${control} EXCEPT ALL TABLE ${table}) d) AS missing,
           (SELECT string_agg(d::text, ' ') FROM (SELECT * FROM (TABLE ${table} EXCEPT ALL
              TABLE ${control}) x ORDER BY id LIMIT 3) d) AS extra_sample,
           (SELECT string_agg(d::text, ' ') FROM (SELECT * FROM (TABLE ${control} EXCEPT ALL
              TABLE ${table}) x ORDER BY id LIMIT 3) d) AS missing_sample`);
  const d = rows[0];
  return `${table} differs from its control: ${d.extra} rows not in the control (${d.extra_sample}), ${d.missing} control rows missing (${d.missing_sample})`;
}

/** A table of ROWS rows under the policy, and an identical plain table, `<name>_control`. */
async function createTable(name: string): Promise<{ table: string; control: string }> {
  await db.pool.query(`
    CREATE TABLE ${name} (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, v int NOT NULL, note text);
    INSERT INTO ${name}
    SELECT i, now() - (${ROWS} - i) * interval '1 hour', i % 10, md5(i::text)
      FROM generate_series(1, ${ROWS}) AS i;
    ANALYZE ${name};
    CREATE TABLE ${name}_control AS TABLE ${name};
    SELECT offload.attach_policy('${name}', 'hourly_rows');`);
  return { table: name, control: `${name}_control` };
}

// The same rows in a table partitioned by range on created_at: 4 partitions of 55 days, every one
// older than 30 days (the policy's cutoff), go cold whole; the 5th holds the last month and more.
// No primary key: PostgreSQL cannot attach a foreign partition under a unique index.
const COLD_PARTITIONS = 4;

/** Like createTable, range-partitioned: its control is a plain table. */
async function createPartitionedTable(name: string): Promise<{ table: string; control: string }> {
  await db.pool.query(`
    CREATE TABLE ${name} (id bigint NOT NULL, created_at timestamptz NOT NULL, v int NOT NULL, note text)
      PARTITION BY RANGE (created_at);
    DO $$
    DECLARE
      base timestamptz := date_trunc('day', now() - interval '251 days');
    BEGIN
      FOR k IN 0..${COLD_PARTITIONS} LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF ${name} FOR VALUES FROM (%L) TO (%L)',
          '${name}_p' || k, base + k * interval '55 days',
          base + CASE WHEN k < ${COLD_PARTITIONS} THEN (k + 1) * interval '55 days' ELSE interval '400 days' END);
      END LOOP;
    END $$;
    INSERT INTO ${name}
    SELECT i, now() - (${ROWS} - i) * interval '1 hour', i % 10, md5(i::text)
      FROM generate_series(1, ${ROWS}) AS i;
    ANALYZE ${name};
    CREATE TABLE ${name}_control AS TABLE ${name};
    SELECT offload.attach_policy('${name}', 'hourly_rows');`);
  return { table: name, control: `${name}_control` };
}

/**
 * Every partition of the table is attached, either still a heap partition or a foreign one, and
 * every row a partition serves lies inside its bounds (PostgreSQL routes rows into a heap
 * partition, but a foreign one returns whatever its reader sends). With the digest equal to the
 * control's and no id twice, each row is in the table once, in its own partition.
 */
async function expectPartitionsWhole(table: string): Promise<void> {
  const { rows: parts } = await db.pool.query(
    `SELECT c.oid::regclass::text AS name, c.relkind AS kind,
            offload.partition_lower_bound(c.oid, 'timestamptz') AS lo,
            offload.partition_upper_bound(c.oid, 'timestamptz') AS hi
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = $1::regclass ORDER BY lo`,
    [table],
  );
  // An offloaded partition: a partitioned table of the partition's name and bounds whose one
  // partition is the foreign table, with the same bounds.
  expect(parts.map((p) => p.kind)).toEqual([...Array(COLD_PARTITIONS).fill("p"), "r"]);
  for (const part of parts.filter((p) => p.kind === "p")) {
    const { rows: inner } = await db.pool.query(
      `SELECT c.relkind AS kind, pg_get_expr(c.relpartbound, c.oid) = pg_get_expr(h.relpartbound, h.oid) AS same
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class h ON h.oid = i.inhparent
        WHERE i.inhparent = $1::regclass`,
      [part.name],
    );
    expect(inner, part.name).toEqual([{ kind: "f", same: true }]);
  }
  for (const part of parts) {
    const { rows } = await db.pool.query(
      `SELECT count(*) FILTER (WHERE NOT (created_at >= $1 AND created_at < $2))::int AS outside
         FROM ${part.name}`,
      [part.lo, part.hi],
    );
    expect(rows[0].outside, part.name).toBe(0);
  }
  // Neither a detached heap partition (renamed while its offload commits) nor a foreign or
  // partitioned table left outside the table.
  const { rows: strays } = await db.pool.query(
    `SELECT relname FROM pg_class
      WHERE (relname LIKE $1 OR relname LIKE 'pg\\_offload\\_heap\\_%') AND relkind IN ('r', 'f', 'p')
        AND NOT relispartition`,
    [`${table}\\_p%`],
  );
  expect(strays).toEqual([]);
}

/**
 * Each segment's epoch advanced once per rewrite that swapped it: 1 from its offload, plus one
 * offload.rewritten_segments row per rewrite job, and this job's rows are one per segment when it
 * rewrites them all (none for an offload).
 */
async function expectEpochsAdvancedOnce(
  table: string,
  jobId: number,
  kind: JobKind,
): Promise<void> {
  const { rows } = await db.pool.query(
    `SELECT s.id, s.epoch,
            (SELECT count(*)::int FROM offload.rewritten_segments r WHERE r.segment_id = s.id) AS swaps,
            (SELECT count(*)::int FROM offload.rewritten_segments r
              WHERE r.segment_id = s.id AND r.job_id = $2 AND r.epoch = s.epoch) AS by_job
       FROM offload.segments s WHERE s.table_id = $1::regclass AND s.state = 'committed'`,
    [table, jobId],
  );
  // How many segments an offload cut depends on where a retry re-planned (a killed offload plans
  // the rest again): at least the 4 of a clean run, and each swapped once per rewrite.
  expect(rows.length).toBeGreaterThanOrEqual(4);
  for (const segment of rows) {
    expect(segment.epoch, `segment ${segment.id}`).toBe(1 + segment.swaps);
    expect(segment.by_job, `segment ${segment.id}`).toBe(kind.offloadedFirst ? 1 : 0);
  }
}

/** Segments of the table committed, and of those how many a rewrite has swapped to a new epoch. */
async function segmentCounts(table: string): Promise<{ committed: number; rewritten: number }> {
  const { rows } = await db.pool.query(
    `SELECT count(*)::int AS committed, count(*) FILTER (WHERE epoch > 1)::int AS rewritten
       FROM offload.segments WHERE table_id = $1::regclass AND state = 'committed'`,
    [table],
  );
  return rows[0];
}

// The in-process bridge that finishes what a killed one left: its lease and chunks as theirs.
const SURVIVOR = { jobLeaseMs: LEASE_MS, commitLockTimeoutMs: 5_000, chunkBytes: 16_384 };

async function withBridge<T>(run: (bridge: RunningBridge) => Promise<T>): Promise<T> {
  const bridge = await startTestBridge(db.url, store.config, { overrides: SURVIVOR });
  try {
    return await run(bridge);
  } finally {
    await bridge.stop();
  }
}

/**
 * A separate bridge process that stops (`:pause`) at the failpoint until `resume()`. `stop()`
 * ends it whatever state it is in (a paused bridge cannot take a SIGTERM).
 */
function pausingBridge(point: string): {
  bridge: BridgeProcess;
  resume(): Promise<void>;
  stop(): Promise<void>;
} {
  const resumeFile = join(resumeDir, `${Math.random().toString(36).slice(2)}.resume`);
  const bridge = spawnTracked({
    ...env,
    PGOFFLOAD_FAILPOINT: `${point}:pause`,
    PGOFFLOAD_FAILPOINT_RESUME: resumeFile,
  });
  return {
    bridge,
    resume: () => writeFile(resumeFile, ""),
    stop: () => bridge.kill("SIGKILL"),
  };
}

async function reached(bridge: BridgeProcess, text: string): Promise<void> {
  await waitUntil(async () => bridge.output().includes(text), { context: bridge.output });
}

/** Waits for the process to end, and checks it was the failpoint that ended it. */
async function expectKilledAt(bridge: BridgeProcess, point: string): Promise<void> {
  await waitUntil(async () => bridge.child.exitCode !== null || bridge.child.signalCode !== null, {
    context: bridge.output,
  });
  expect((await bridge.exited).signal, bridge.output()).toBe("SIGKILL");
  expect(bridge.output()).toContain(`failpoint ${point} reached, killing`);
}

/** A transaction of another session holding a lock (taken by `sql`) until released. */
async function holdLock(sql: string, params: unknown[] = []): Promise<() => Promise<void>> {
  const client = await db.pool.connect();
  await client.query("BEGIN");
  await client.query(sql, params);
  return async () => {
    await client.query("ROLLBACK");
    client.release();
  };
}

async function expectSucceeded(jobId: number): Promise<void> {
  const job = await waitForJob(db.pool, jobId);
  expect(job.state, `job ${jobId}: ${job.last_error}`).toBe("succeeded");
}

async function lockedBy(jobId: number): Promise<string | null> {
  const { rows } = await db.pool.query("SELECT locked_by FROM offload.jobs WHERE id = $1", [jobId]);
  return rows[0].locked_by;
}

async function jobError(jobId: number): Promise<string> {
  const { rows } = await db.pool.query("SELECT last_error FROM offload.jobs WHERE id = $1", [
    jobId,
  ]);
  return rows[0]?.last_error ?? "";
}

// ----- bridge jobs: offload, rewrite by delete and by update -----

interface JobKind {
  name: string;
  /** Queues the job on the table; returns its id. */
  start(table: string): Promise<number>;
  /** The same change, once, with plain SQL on the control (`table` says which rows are cold). */
  applyToControl(control: string, table: string): Promise<void>;
  /** Segments done (committed, or swapped to a new epoch) as the table's catalog counts them. */
  done(counts: { committed: number; rewritten: number }): number;
  /** The failpoint just before a segment's commit or swap, to line the lock up with it. */
  commitPoint: string;
  /** Where a bridge stalls past its lease while another takes its job over. */
  stallPoint: string;
  offloadedFirst: boolean;
  /** The table is range-partitioned (whole partitions go cold), not plain. */
  partitioned?: boolean;
}

async function jobId(sql: string, params: unknown[]): Promise<number> {
  return Number((await db.pool.query(sql, params)).rows[0].id);
}

// Cold rows of the table are those not in its heap: only they are the rewrite's to change.
const coldInControl = (table: string) =>
  `NOT EXISTS (SELECT FROM ONLY ${table} h WHERE h.id = c.id)`;

const OFFLOAD: JobKind = {
  name: "offload",
  start: (table) => jobId("SELECT offload.run($1) AS id", [table]),
  applyToControl: async () => {}, // moving rows changes no row
  done: (counts) => counts.committed,
  commitPoint: "before-commit",
  // Its copy is taken; the other bridge then offloads (and deletes from the heap) the same rows.
  stallPoint: "before-commit@2",
  offloadedFirst: false,
};

const DELETE_COLD: JobKind = {
  name: "delete_cold",
  start: (table) => jobId("SELECT offload.delete_cold($1, 'id % 7 = 0') AS id", [table]),
  applyToControl: async (control, table) => {
    await db.pool.query(`DELETE FROM ${control} c WHERE id % 7 = 0 AND ${coldInControl(table)}`);
  },
  done: (counts) => counts.rewritten,
  commitPoint: "before-swap",
  // Its list of segments (and their epochs) is taken; the other bridge then rewrites them all.
  stallPoint: "before-rewrite-segment@2",
  offloadedFirst: true,
};

// Not idempotent: applied twice to a segment, v goes up by 2.
const UPDATE_COLD: JobKind = {
  ...DELETE_COLD,
  name: "update_cold",
  start: (table) =>
    jobId(`SELECT offload.update_cold($1, '{"v": "v + 1"}', 'id % 3 <> 0') AS id`, [table]),
  applyToControl: async (control, table) => {
    await db.pool.query(
      `UPDATE ${control} c SET v = v + 1 WHERE id % 3 <> 0 AND ${coldInControl(table)}`,
    );
  },
};

// Every segment rewritten, no row changed: the control is the unchanged table.
const REWRITE_COLD: JobKind = {
  ...DELETE_COLD,
  name: "rewrite_cold",
  start: (table) => jobId("SELECT offload.rewrite_cold($1) AS id", [table]),
  applyToControl: async () => {},
};

// The commit detaches the heap partition and attaches a foreign table with its bounds.
const PARTITIONED_OFFLOAD: JobKind = {
  ...OFFLOAD,
  name: "partitioned offload",
  partitioned: true,
};

interface KillPoint {
  /** The failpoint; `@chunk-in-2nd` is replaced by a hit count inside the 2nd segment. */
  point: string;
  /** Segments done when the bridge dies ("all": every one). */
  doneAtKill: number | "all";
}

const OFFLOAD_KILLS: KillPoint[] = [
  { point: "after-claim", doneAtKill: 0 },
  { point: "after-begin-segment@2", doneAtKill: 1 },
  { point: "after-chunk-upload@chunk-in-2nd", doneAtKill: 1 },
  { point: "before-commit@2", doneAtKill: 1 },
  { point: "after-commit@2", doneAtKill: 2 },
  { point: "before-complete", doneAtKill: "all" },
];

const REWRITE_KILLS: KillPoint[] = [
  { point: "after-claim", doneAtKill: 0 },
  { point: "before-rewrite-segment@2", doneAtKill: 1 },
  { point: "after-chunk-upload@chunk-in-2nd", doneAtKill: 1 },
  { point: "before-swap@2", doneAtKill: 1 },
  { point: "after-swap@1", doneAtKill: 1 },
  { point: "after-swap@2", doneAtKill: 2 },
  { point: "before-complete", doneAtKill: "all" },
];

// The commit or swap of the 1st, the 2nd and the last segment times out.
const TIMED_OUT_SEGMENTS = [1, 2, 4];

interface Matrix {
  kind: JobKind;
  kills: KillPoint[];
  /** Segments whose commit or swap times out. */
  timeouts: number[];
  stalled: boolean;
}

const KINDS: Matrix[] = [
  { kind: OFFLOAD, kills: OFFLOAD_KILLS, timeouts: TIMED_OUT_SEGMENTS, stalled: true },
  { kind: DELETE_COLD, kills: REWRITE_KILLS, timeouts: TIMED_OUT_SEGMENTS, stalled: true },
  { kind: UPDATE_COLD, kills: REWRITE_KILLS, timeouts: TIMED_OUT_SEGMENTS, stalled: true },
  // The shapes the cases above do not cover, around their 2nd commit or swap.
  {
    kind: REWRITE_COLD,
    kills: [
      { point: "before-swap@2", doneAtKill: 1 },
      { point: "after-swap@1", doneAtKill: 1 },
    ],
    timeouts: [2],
    stalled: false,
  },
  {
    kind: PARTITIONED_OFFLOAD,
    kills: [
      { point: "before-commit@2", doneAtKill: 1 },
      { point: "after-commit@1", doneAtKill: 1 },
    ],
    timeouts: [2],
    stalled: false,
  },
];

// Tables are made (and offloaded, for rewrites) up front, in one go: name -> table and control.
const caseTables = new Map<string, { table: string; control: string }>();
const tableName = (kind: string, fault: string) =>
  `${kind}_${fault}`.replace(/[^a-z0-9]+/g, "_").slice(0, 50);

beforeAll(async () => {
  db = await createTestDatabase("exactly-once");
  store = await testStoreConfig("local");
  if (store.config.kind !== "local") throw new Error("unreachable");
  storeDir = store.config.dir;
  resumeDir = await mkdtemp(join(tmpdir(), "pg-offload-resume-"));
  env = {
    ...quickBridgeEnv(db.url, storeDir),
    // Offloads cut chunks by the policy, rewrites by the bridge: the same size for both.
    PGOFFLOAD_CHUNK_BYTES: "16384",
    // A killed bridge's job is taken over quickly. Never two bridges run at once (but in the
    // "stalled" cases, which want the takeover), so a late heartbeat cannot lose a job.
    PGOFFLOAD_JOB_LEASE_MS: String(LEASE_MS),
    PGOFFLOAD_COMMIT_LOCK_TIMEOUT_MS: String(LOCK_TIMEOUT_MS),
  };
  await db.pool.query(POLICY);

  const toOffload = ["reference"];
  caseTables.set("reference", await createTable("reference"));
  for (const { kind, kills, timeouts, stalled } of KINDS) {
    const faults = [
      ...kills.map((k) => k.point),
      ...timeouts.map((n) => `lock-timeout@${n}`),
      ...(stalled ? ["stalled"] : []),
    ];
    for (const fault of faults) {
      const name = tableName(kind.name, fault);
      const create = kind.partitioned ? createPartitionedTable : createTable;
      caseTables.set(name, await create(name));
      if (kind.offloadedFirst) toOffload.push(name);
    }
  }
  for (const op of ["load_back", "truncate"]) {
    for (const fault of SESSION_FAULTS.filter((f) => f.ops.includes(op))) {
      const name = tableName(op, fault.name);
      caseTables.set(name, await createTable(name));
      toOffload.push(name);
    }
  }
  await withBridge(async () => {
    const jobs = [];
    for (const name of toOffload) jobs.push(await OFFLOAD.start(name));
    for (const id of jobs) expect((await waitForJob(db.pool, id, 120_000)).state).toBe("succeeded");
  });
  for (const name of toOffload) expect((await segmentCounts(name)).committed).toBe(4);
  const { rows } = await db.pool.query(
    `SELECT count(*)::int AS n FROM offload.chunks
      WHERE segment_id = (SELECT min(id) FROM offload.segments WHERE table_id = 'reference'::regclass)`,
  );
  firstSegmentChunks = rows[0].n;
  expect(firstSegmentChunks).toBeGreaterThan(2);
});

afterAll(async () => {
  await db?.drop();
  await store?.cleanup();
  if (resumeDir) await rm(resumeDir, { recursive: true, force: true });
});

/** What every case checks once its job has finished. */
async function expectChangedOnce(kind: JobKind, id: number, table: string, control: string) {
  await expectEqualsControl(table, control);
  await expectEpochsAdvancedOnce(table, id, kind);
  if (kind.partitioned) await expectPartitionsWhole(table);
}

/** The bridge killed at the point while doing the job; then a fresh bridge finishes it. */
async function killedThenFinished(kind: JobKind, { point: spec, doneAtKill }: KillPoint) {
  const { table, control } = caseTables.get(tableName(kind.name, spec))!;
  // Two chunks into the 2nd segment: a rewritten 1st segment may hold a chunk fewer or more.
  const point = spec.replace("@chunk-in-2nd", `@${firstSegmentChunks + 2}`);
  await kind.applyToControl(control, table);

  const doomed = spawnTracked({ ...env, PGOFFLOAD_FAILPOINT: point });
  const id = await kind.start(table);
  await expectKilledAt(doomed, point);
  tally.runs++;
  const atKill = kind.done(await segmentCounts(table));
  expect(atKill).toBe(doneAtKill === "all" ? 4 : doneAtKill);

  await withBridge(async () => {
    await expectSucceeded(id);
    await expectChangedOnce(kind, id, table, control);
  });
  return { table, control };
}

describe.each(KINDS.map((matrix) => ({ name: matrix.kind.name, ...matrix })))(
  "a $name job",
  ({ kind, kills, timeouts, stalled }) => {
    it.each(kills)(
      "killed at $point, then finished by another bridge: the control's change, exactly once",
      async (kill) => {
        finished.push(await killedThenFinished(kind, kill));
      },
    );

    it.each(timeouts)(
      "whose commit or swap of segment %i hits its lock timeout: retried, the change lands once",
      async (n) => {
        const { table, control } = caseTables.get(tableName(kind.name, `lock-timeout@${n}`))!;
        await kind.applyToControl(control, table);
        const point = `${kind.commitPoint}@${n}`;
        const { bridge, resume, stop } = pausingBridge(point);
        try {
          const id = await kind.start(table);
          await reached(bridge, `failpoint ${point}:pause reached`);
          // What any query on the table holds, on it and on every segment table, until its
          // transaction ends: the commit's LOCK ... ACCESS EXCLUSIVE and the swap's ALTER wait.
          const release = await holdLock(`EXPLAIN SELECT * FROM ${table}`);
          try {
            await resume();
            await waitUntil(async () => /lock timeout/.test(await jobError(id)), {
              context: bridge.output,
            });
            tally.runs++;
            // What was done stays done; the rest is not, however often it is retried meanwhile.
            expect(kind.done(await segmentCounts(table))).toBe(n - 1);
          } finally {
            await release();
          }
          await expectSucceeded(id);
          await expectChangedOnce(kind, id, table, control);
          finished.push({ table, control });
        } finally {
          await stop();
        }
      },
    );

    if (stalled)
      it("stalled past its lease while another bridge does the job, then resumed: the change lands once", async () => {
        const { table, control } = caseTables.get(tableName(kind.name, "stalled"))!;
        await kind.applyToControl(control, table);
        const { bridge: stalled, resume, stop } = pausingBridge(kind.stallPoint);
        let other: RunningBridge | undefined;
        try {
          const id = await kind.start(table);
          await reached(stalled, `failpoint ${kind.stallPoint}:pause reached`);
          const stalledWorker = await lockedBy(id);
          other = await startTestBridge(db.url, store.config, { overrides: SURVIVOR });
          // Resumed once the other bridge has taken the job over: both now work on it. (Left
          // paused, the stalled offload's open transaction would make the other's commits wait,
          // and reads the other sends to the stalled bridge's endpoint would wait for it too.)
          await waitUntil(async () => (await lockedBy(id)) !== stalledWorker);
          await resume();
          await expectSucceeded(id);
          // The stalled bridge goes on from where it stopped, with what it had read before.
          // Its attempt ends, however (a conflict, a failure, taken over, done): any "job ..." line.
          await waitUntil(
            async () => /resumed[^]*"message":"job (?!started)/.test(stalled.output()),
            {
              timeoutMs: 30_000,
              context: stalled.output,
            },
          );
          tally.runs++;
          expect((await waitForJob(db.pool, id)).state).toBe("succeeded");
          await expectChangedOnce(kind, id, table, control);
          finished.push({ table, control });
        } finally {
          // The stalled one first: the other's reads may be waiting on its endpoint.
          await stop();
          await other?.stop();
        }
      });
  },
);

// ----- load_back and truncate: one transaction in the user's session -----

interface SessionFault {
  name: string;
  ops: string[];
  /**
   * Runs `call` (load_back or truncate, in `session`) into the fault; resolves once the call has
   * failed because of it. The bridge serving reads runs meanwhile only if the fault starts one.
   */
  inject(session: UserSession, call: string, table: string): Promise<void>;
  /** Whether the fault needs no other bridge serving reads while it is injected. */
  bringsOwnBridge: boolean;
}

interface UserSession {
  client: pg.Client;
  pid: number;
  end(): Promise<void>;
}

async function userSession(): Promise<UserSession> {
  const client = new pg.Client({ connectionString: db.url });
  client.on("error", () => {}); // its backend is terminated on purpose
  await client.connect();
  const pid = Number((await client.query("SELECT pg_backend_pid() AS pid")).rows[0].pid);
  return { client, pid, end: () => client.end().catch(() => {}) };
}

async function waitBlocked(pid: number): Promise<void> {
  await waitUntil(async () => {
    const { rows } = await db.pool.query(
      "SELECT cardinality(pg_blocking_pids($1)) > 0 AS blocked",
      [pid],
    );
    return rows[0].blocked;
  });
}

async function terminate(pid: number): Promise<void> {
  await db.pool.query("SELECT pg_terminate_backend($1)", [pid]);
}

/** The 2nd segment of the table (in the order load_back and truncate go through them). */
async function secondSegment(table: string): Promise<{ id: number; chunks: number }> {
  const { rows } = await db.pool.query(
    `SELECT s.id, (SELECT count(*)::int FROM offload.chunks c
                    WHERE c.segment_id = s1.id AND c.epoch = s1.epoch) AS first_chunks
       FROM offload.segments s, LATERAL (SELECT * FROM offload.segments
                                          WHERE table_id = s.table_id AND state = 'committed'
                                          ORDER BY id LIMIT 1) s1
      WHERE s.table_id = $1::regclass AND s.state = 'committed' ORDER BY s.id OFFSET 1 LIMIT 1`,
    [table],
  );
  return { id: Number(rows[0].id), chunks: rows[0].first_chunks };
}

// The catalog row of the 2nd segment, locked: load_back and truncate wait on it right after
// they have dropped the 2nd segment table (retiring it), with half the work done.
const lockSecondSegmentRow = async (table: string) =>
  holdLock("SELECT FROM offload.segments WHERE id = $1 FOR UPDATE", [
    (await secondSegment(table)).id,
  ]);

const SESSION_FAULTS: SessionFault[] = [
  {
    name: "bridge killed mid-read",
    ops: ["load_back"],
    bringsOwnBridge: true,
    async inject(session, call, table) {
      const point = `after-chunk-served@${(await secondSegment(table)).chunks + 1}`;
      const doomed = spawnTracked({ ...env, PGOFFLOAD_FAILPOINT: point });
      await reached(doomed, "bridge started");
      await expect(session.client.query(call)).rejects.toThrow(
        /program .* failed|curl|server closed the connection/,
      );
      await expectKilledAt(doomed, point);
    },
  },
  {
    name: "session killed mid-read",
    ops: ["load_back"],
    bringsOwnBridge: true,
    async inject(session, call, table) {
      const point = `after-chunk-served@${(await secondSegment(table)).chunks + 1}`;
      const { bridge, resume, stop } = pausingBridge(point);
      try {
        await reached(bridge, "bridge started");
        const running = session.client.query(call);
        running.catch(() => {});
        await reached(bridge, `failpoint ${point}:pause reached`);
        await terminate(session.pid);
        await resume();
        // pg_terminate_backend signals the backend's whole process group, the curl it reads from
        // included: the session ends either on its own signal or on the program's failure, first
        // come (the order changed with the bridge's Node). Either way nothing may have changed,
        // which is what the case then checks.
        await expect(running).rejects.toThrow(/terminat|program .* failed/);
      } finally {
        await stop();
      }
    },
  },
  {
    name: "session killed half-way",
    ops: ["load_back", "truncate"],
    bringsOwnBridge: false,
    async inject(session, call, table) {
      const release = await lockSecondSegmentRow(table);
      try {
        const running = session.client.query(call);
        running.catch(() => {});
        await waitBlocked(session.pid);
        await terminate(session.pid);
        await expect(running).rejects.toThrow(/terminat/);
      } finally {
        await release();
      }
    },
  },
  {
    name: "lock timeout half-way",
    ops: ["load_back", "truncate"],
    bringsOwnBridge: false,
    async inject(session, call, table) {
      const release = await lockSecondSegmentRow(table);
      try {
        await session.client.query(`SET lock_timeout = '${LOCK_TIMEOUT_MS}ms'`);
        await expect(session.client.query(call)).rejects.toThrow(/lock timeout/);
      } finally {
        await release();
      }
    },
  },
];

describe.each(["load_back", "truncate"])("offload.%s", (op) => {
  it.each(SESSION_FAULTS.filter((f) => f.ops.includes(op)))(
    "$name: nothing changes; a retry changes the table exactly once",
    async (fault) => {
      const { table, control } = caseTables.get(tableName(op, fault.name))!;
      const call = `SELECT offload.${op}('${table}')`;
      const segmentsBefore = await segmentTables(db.pool, table);
      const session = await userSession();
      try {
        if (fault.bringsOwnBridge) await fault.inject(session, call, table);
        else await withBridge(() => fault.inject(session, call, table));
        tally.runs++;
      } finally {
        await session.end();
      }

      await withBridge(async () => {
        expect(await segmentTables(db.pool, table)).toEqual(segmentsBefore);
        expect((await segmentCounts(table)).committed).toBe(4);
        await expectEqualsControl(table, control);

        const { rows } = await db.pool.query(
          `SELECT count(*) FILTER (WHERE tableoid <> '${table}'::regclass)::int AS cold FROM ${table}`,
        );
        const retried = await db.pool.query(`${call} AS n`);
        expect(Number(retried.rows[0].n)).toBe(rows[0].cold);
        if (op === "truncate") await db.pool.query(`TRUNCATE ${control}`);
        expect(await segmentTables(db.pool, table)).toEqual([]);
        expect((await segmentCounts(table)).committed).toBe(0);
        await expectEqualsControl(table, control);
        // Every row back in the heap, once.
        const inHeap = await db.pool.query(`SELECT count(*)::int AS n FROM ONLY ${table}`);
        expect(inHeap.rows[0].n).toBe(op === "truncate" ? 0 : ROWS);
      });
      finished.push({ table, control });
    },
  );
});

// ----- garbage collection -----

function runGc(failpoint?: string): BridgeProcess {
  return spawnTracked(
    {
      ...env,
      PGOFFLOAD_GC_GRACE_MS: "0",
      ...(failpoint ? { PGOFFLOAD_FAILPOINT: failpoint } : {}),
    },
    ["gc"],
  );
}

/** Every object the current epoch of a committed segment references is in the store. */
async function expectReferencedObjectsKept(): Promise<number> {
  const { rows } = await db.pool.query(
    `SELECT c.object_key FROM offload.chunks c JOIN offload.segments s ON s.id = c.segment_id
      WHERE s.state = 'committed' AND c.epoch = s.epoch`,
  );
  const missing = rows.map((r) => r.object_key).filter((k) => !existsSync(join(storeDir, k)));
  expect(missing).toEqual([]);
  return rows.length;
}

async function expectEverySegmentVerifies(): Promise<void> {
  const { rows } = await db.pool.query(
    `SELECT v.* FROM (SELECT DISTINCT table_id FROM offload.segments WHERE state = 'committed') t,
            offload.verify(t.table_id) v`,
  );
  expect(rows.length).toBeGreaterThan(0);
  expect(rows.filter((r) => !r.ok)).toEqual([]);
}

describe("garbage collection", () => {
  it("killed mid-way and before it updates the catalog: never an object a committed segment references; gc again removes the rest", async () => {
    const dryRun = spawnTracked({ ...env, PGOFFLOAD_GC_GRACE_MS: "0" }, ["gc", "--dry-run"]);
    expect((await dryRun.exited).code, dryRun.output().slice(-2000)).toBe(0);
    const garbage = Number(/(\d+) garbage/.exec(dryRun.output())?.[1]);
    // Replaced epochs of the rewrites, abandoned attempts, segments loaded back or truncated.
    expect(garbage, dryRun.output().slice(-2000)).toBeGreaterThan(20);

    await withBridge(async () => {
      for (const point of ["gc-after-delete@3", "gc-before-forget"]) {
        const gc = runGc(point);
        await expectKilledAt(gc, point);
        tally.runs++;
        await expectReferencedObjectsKept();
        await expectEverySegmentVerifies();
      }
      const gc = runGc();
      expect((await gc.exited).code, gc.output().slice(-2000)).toBe(0);
      tally.runs++;
      const referenced = await expectReferencedObjectsKept();
      await expectEverySegmentVerifies();
      const again = runGc();
      expect((await again.exited).code, again.output().slice(-2000)).toBe(0);
      expect(again.output()).toContain(`${referenced} objects listed, 0 garbage, 0 removed`);
      for (const { table, control } of finished) await expectEqualsControl(table, control);
    });
  });
});

// ----- the same kills on the S3 store -----

// Where a kill leaves the most behind in the store: objects of an uncommitted segment or epoch,
// a segment or epoch stored but not committed or swapped, one committed whose progress is not.
const S3_KILLS: [JobKind, KillPoint[]][] = [
  [OFFLOAD, OFFLOAD_KILLS.filter((k) => /chunk-upload|commit/.test(k.point))],
  [UPDATE_COLD, REWRITE_KILLS.filter((k) => /chunk-upload|swap/.test(k.point))],
];

// Runs last, in a database of its own (a bridge serves and collects one store, and garbage
// collection above checks the local store): db, store and env point there meanwhile, so that
// the cases above run unchanged against S3 (s3rver, started by the global setup).
describe("on the S3 store", () => {
  let local: { db: TestDatabase; store: typeof store; env: typeof env } | undefined;

  beforeAll(async () => {
    local = { db, store, env };
    db = await createTestDatabase("exactly-once-s3");
    store = await testStoreConfig("s3");
    if (store.config.kind !== "s3") throw new Error("unreachable");
    env = {
      ...local.env,
      PGOFFLOAD_DATABASE_URL: db.url,
      PGOFFLOAD_STORE: "s3",
      PGOFFLOAD_S3_BUCKET: store.config.bucket,
      PGOFFLOAD_S3_PREFIX: store.config.prefix ?? "exactly-once",
      PGOFFLOAD_S3_ENDPOINT: store.config.endpoint ?? "",
      PGOFFLOAD_S3_FORCE_PATH_STYLE: "true",
    };
    await db.pool.query(POLICY);
    const toOffload: string[] = [];
    for (const [kind, kills] of S3_KILLS) {
      for (const { point } of kills) {
        const name = tableName(`s3_${kind.name}`, point);
        caseTables.set(name, await createTable(name));
        if (kind.offloadedFirst) toOffload.push(name);
      }
    }
    await withBridge(async () => {
      const jobs = [];
      for (const name of toOffload) jobs.push(await OFFLOAD.start(name));
      for (const id of jobs) await expectSucceeded(id);
    });
  });

  afterAll(async () => {
    if (!local) return;
    await db.drop();
    await store.cleanup();
    ({ db, store, env } = local);
  });

  describe.each(S3_KILLS.map(([kind, kills]) => ({ name: kind.name, kind, kills })))(
    "a $name job",
    ({ kind, kills }) => {
      it.each(kills)(
        "killed at $point, then finished by another bridge: the control's change, exactly once",
        async (kill) => {
          const { table } = await killedThenFinished({ ...kind, name: `s3_${kind.name}` }, kill);
          const { rows } = await db.pool.query(
            `SELECT DISTINCT store FROM offload.segments
              WHERE table_id = $1::regclass AND state = 'committed'`,
            [table],
          );
          expect(rows.map((r) => r.store)).toEqual([expect.stringMatching(/^s3:\/\//)]);
        },
      );
    },
  );
});
