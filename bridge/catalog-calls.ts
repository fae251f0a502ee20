/**
 * The catalog's SQL functions as the bridge calls them: each statement's text beside a typed
 * function that sends it, grouped by area.
 *
 * The rule for where the bridge's SQL lives: a statement whose whole work is a call of functions
 * (the offload schema's, or PostgreSQL's own such as set_config and the advisory locks), with its
 * parameters, casts and column names, is a constant here, and its wrapper gives TypeScript the
 * arguments and the result's types; the logic is in the function it calls. SQL that reads or
 * writes tables itself, or that needs several lines to say what it does, is a .sql file in
 * bridge/queries/ (query(name)), where it reads and is reviewed as SQL. The policy engine's calls
 * are in policy-plan.ts, the CLI's in cli/catalog-calls.ts, by the same rule.
 */
import type pg from "pg";
import type { WrittenChunk } from "./copy-to-store.ts";
import { idempotentQuery } from "./db.ts";
import type { RewriteParams } from "./job-queue.ts";
import type { ReaderTarget } from "./reader-program.ts";

/** A pool, or one of its connections where the call belongs in that connection's transaction. */
type Queryable = pg.Pool | pg.ClientBase;

// ---- Start-up -------------------------------------------------------------------------------

const CURRENT_INSTALLATION = "SELECT offload.current_installation() AS id;";

/** The installation's id: the first part of every object key it writes. */
export async function currentInstallation(db: Queryable): Promise<string> {
  const { rows } = await db.query<{ id: string }>(CURRENT_INSTALLATION);
  return rows[0]!.id;
}

const ADOPT_RESTORED_SEGMENTS =
  "SELECT offload.resync_restored_segments() AS resynced, offload.restore_row_estimates() AS estimated;";

/**
 * After a restore from a dump, takes the segment tables as they now are (new oids, renumbered
 * columns) and tells the planner their row counts again. Returns how many of each it did.
 */
export async function adoptRestoredSegments(
  db: Queryable,
): Promise<{ resynced: number; estimated: number }> {
  const { rows } = await db.query(ADOPT_RESTORED_SEGMENTS);
  return { resynced: Number(rows[0].resynced), estimated: Number(rows[0].estimated) };
}

// ---- Read endpoints -------------------------------------------------------------------------

const LOCK_ENDPOINT_REPOINTING = "SELECT pg_advisory_lock(1885826918, -2);";
const UNLOCK_ENDPOINT_REPOINTING = "SELECT pg_advisory_unlock(1885826918, -2);";

/** Session-level: held while a starting bridge records its endpoint and repoints segment tables. */
export async function lockEndpointRepointing(client: pg.ClientBase): Promise<void> {
  await client.query(LOCK_ENDPOINT_REPOINTING);
}

export async function unlockEndpointRepointing(client: pg.ClientBase): Promise<void> {
  await client.query(UNLOCK_ENDPOINT_REPOINTING);
}

const REGISTER_READ_ENDPOINT =
  "SELECT offload.register_read_endpoint($1, $2::jsonb, $3, make_interval(secs => $4::float8 / 1000));";

/** Records (or refreshes) this bridge's endpoint; rows unseen for staleAfterMs are forgotten. */
export async function registerReadEndpoint(
  client: pg.ClientBase,
  endpoint: { name: string; target: ReaderTarget; workerId: string; staleAfterMs: number },
): Promise<void> {
  const { name, target, workerId, staleAfterMs } = endpoint;
  await client.query(REGISTER_READ_ENDPOINT, [
    name,
    JSON.stringify(target),
    workerId,
    staleAfterMs,
  ]);
}

const POINT_REMOTE_SERVERS = "SELECT offload.point_remote_servers() AS changed;";

/** Points every postgres_fdw server at the recorded SQL endpoints; returns how many changed. */
export async function pointRemoteServers(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ changed: number }>(POINT_REMOTE_SERVERS);
  return Number(rows[0]?.changed ?? 0);
}

const LOCK_READ_ENDPOINTS_SHARED = "SELECT offload.lock_read_endpoints_shared();";

/** In a commit's transaction: no bridge changes the set of endpoints until it ends. */
export async function lockReadEndpointsShared(client: pg.ClientBase): Promise<void> {
  await client.query(LOCK_READ_ENDPOINTS_SHARED);
}

const REPOINT_SEGMENT = "SELECT offload.repoint_segment($1, $2, $3) AS changed;";

/** Gives a segment table a new reader program; true when it differed from the one it had. */
export async function repointSegment(
  client: pg.ClientBase,
  segment: { id: number; epoch: number; program: string },
): Promise<boolean> {
  const { rows } = await client.query(REPOINT_SEGMENT, [
    segment.id,
    segment.epoch,
    segment.program,
  ]);
  return Boolean(rows[0].changed);
}

// ---- Offloads: one segment, from its pending record to its commit ----------------------------

const CHECK_TABLE = "SELECT offload.check_table($1::oid::regclass);";

/** Raises the same clear error a user would get if the table can no longer be offloaded. */
export async function checkTable(db: Queryable, tableOid: number): Promise<void> {
  await db.query(CHECK_TABLE, [tableOid]);
}

const BOUND_SEGMENT_TABLES = "SELECT offload.bound_segment_tables($1::oid::regclass) AS merged;";

/** Merges segments over the table's bound of segment tables; returns how many were merged away. */
export async function boundSegmentTables(client: pg.ClientBase, tableOid: number): Promise<number> {
  const { rows } = await client.query(BOUND_SEGMENT_TABLES, [tableOid]);
  return Number(rows[0].merged);
}

const BEGIN_SEGMENT =
  "SELECT offload.begin_segment($1, $2::oid::regclass, $3, $4, $5, $6::regclass) AS id;";

/** Writes the pending segment record (committed on its own); returns the segment's id. */
export async function beginSegment(
  db: Queryable,
  segment: {
    jobId: number;
    tableOid: number;
    lo: string;
    hi: string;
    store: string;
    partition: string | null;
  },
): Promise<number> {
  const { jobId, tableOid, lo, hi, store, partition } = segment;
  const { rows } = await db.query(BEGIN_SEGMENT, [jobId, tableOid, lo, hi, store, partition]);
  return Number(rows[0].id);
}

const SEGMENT_LOCK_STATEMENT = "SELECT offload.segment_lock_statement($1) AS sql;";

/** For a partition: the LOCK that must run first in the offload's transaction (null for ranges). */
export async function segmentLockStatement(
  db: Queryable,
  segmentId: number,
): Promise<string | null> {
  const { rows } = await db.query(SEGMENT_LOCK_STATEMENT, [segmentId]);
  return rows[0]?.sql ?? null;
}

const SEGMENT_COPY_STATEMENT = "SELECT offload.segment_copy_statement($1) AS sql;";

/**
 * The COPY of the segment's rows. The first statement of an offload's REPEATABLE READ
 * transaction: its snapshot is the one the COPY and the commit will see.
 */
export async function segmentCopyStatement(
  client: pg.ClientBase,
  segmentId: number,
): Promise<string> {
  const { rows } = await client.query(SEGMENT_COPY_STATEMENT, [segmentId]);
  return rows[0].sql;
}

const ABORT_SEGMENT = "SELECT offload.abort_segment($1);";

/** Marks a pending segment aborted. Idempotent, so resent when the connection it went on died. */
export async function abortSegment(db: pg.Pool, segmentId: number): Promise<void> {
  await idempotentQuery(db, ABORT_SEGMENT, [segmentId]);
}

const SET_COMMIT_LOCK_TIMEOUT = "SELECT set_config('lock_timeout', $1, true);";

/** For the rest of the transaction: how long its locks may wait for queries on the table. */
export async function setCommitLockTimeout(client: pg.ClientBase, ms: number): Promise<void> {
  await client.query(SET_COMMIT_LOCK_TIMEOUT, [`${ms}ms`]);
}

const COMMIT_SEGMENT = "SELECT offload.commit_segment($1, $2, $3, $4)::text AS segment_table;";

/** Records the chunks, makes the segment table and deletes the rows copied; returns its name. */
export async function commitSegment(
  client: pg.ClientBase,
  segment: { id: number; chunks: WrittenChunk[]; program: string; rows: number },
): Promise<string> {
  const { rows } = await client.query(COMMIT_SEGMENT, [
    segment.id,
    JSON.stringify(segment.chunks),
    segment.program,
    segment.rows,
  ]);
  return rows[0].segment_table;
}

// ---- Rewrites -------------------------------------------------------------------------------

const REWRITE_STEP = "SELECT offload.rewrite_step($1, $2, $3, $4) AS statement;";

/**
 * In a rewrite's first transaction: the statement doing one step of rewriting the segment, "count"
 * (the rows the condition matches) or "rows" (the segment's new rows, for COPY TO STDOUT).
 */
export async function rewriteStep(
  client: pg.ClientBase,
  step: { segment: number; params: RewriteParams; requestedBy: string; kind: "count" | "rows" },
): Promise<string> {
  const { segment, params, requestedBy, kind } = step;
  const { rows } = await client.query(REWRITE_STEP, [segment, params, requestedBy, kind]);
  return rows[0].statement;
}

const SWAP_REWRITTEN_SEGMENT =
  "SELECT offload.swap_rewritten_segment($1, $2, $3, $4, $5, $6, $7, $8);";

/** Records a rewritten segment's new epoch and points its table at it, once per job. */
export async function swapRewrittenSegment(
  client: pg.ClientBase,
  swap: {
    jobId: number;
    segment: number;
    newEpoch: number;
    chunks: WrittenChunk[];
    program: string;
    rows: number;
    matched: number;
    fingerprint: string;
  },
): Promise<void> {
  await client.query(SWAP_REWRITTEN_SEGMENT, [
    swap.jobId,
    swap.segment,
    swap.newEpoch,
    JSON.stringify(swap.chunks),
    swap.program,
    swap.rows,
    swap.matched,
    swap.fingerprint,
  ]);
}

// ---- Garbage collection ---------------------------------------------------------------------

const GC_PREPARE = "SELECT offload.gc_prepare(make_interval(secs => $1::float8 / 1000));";

/**
 * First in gc's transaction: abandoned attempts (pending segments whose job is no longer running,
 * or whose bridge has not heartbeated for leaseMs) become aborted; vanished segments retired.
 */
export async function gcPrepare(client: pg.ClientBase, leaseMs: number): Promise<void> {
  await client.query(GC_PREPARE, [leaseMs]);
}

const GC_SEGMENTS = `SELECT segment_id, state, collectable, live_keys
  FROM offload.gc_segments(make_interval(secs => $1::float8 / 1000));`;

export interface GcSegmentRow {
  segment_id: string;
  state: string;
  collectable: boolean;
  live_keys: string[];
}

/** Every segment's state, whether its objects may go (graceMs passed), and its live keys. */
export async function gcSegments(client: pg.ClientBase, graceMs: number): Promise<GcSegmentRow[]> {
  const { rows } = await client.query<GcSegmentRow>(GC_SEGMENTS, [graceMs]);
  return rows;
}

const GC_FORGET =
  "SELECT offload.gc_forget(make_interval(secs => $1::float8 / 1000), $2::bigint[]);";

/** After the objects are gone: forgets collected segments and retired epochs. */
export async function gcForget(
  client: pg.ClientBase,
  graceMs: number,
  segmentIds: number[],
): Promise<void> {
  await client.query(GC_FORGET, [graceMs, segmentIds]);
}
