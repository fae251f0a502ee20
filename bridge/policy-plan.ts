// The bridge's side of the policy engine: what is due for offload, with which chunk settings, and
// which tables the schedule queues. The policy engine itself is SQL (offload.plan_offload,
// offload.write_settings, offload.is_due); this module only asks it. Calls of one function are
// constants here, other SQL a file in bridge/queries/ (the rule: bridge/catalog-calls.ts).
import type pg from "pg";
import { query } from "./sql-files.ts";

/** One unit of offload: a key range of a plain table, or a whole partition. */
export interface DueSegment {
  lo: string;
  hi: string;
  /** The heap partition to replace (its name as PostgreSQL quotes it), for partitioned tables. */
  partition?: string;
}

// What is due on table $1 now: key ranges (partition_table NULL) or whole partitions.
const PLAN_OFFLOAD = `SELECT partition_table::text AS partition_table, range_lo, range_hi
  FROM offload.plan_offload($1::oid::regclass, $2);`;

/**
 * What a table's policy says is due now: key ranges of about `segmentBytes` of heap each (unless
 * the policy sets its own size), or whole partitions. Computed by offload.plan_offload() in SQL.
 */
export async function dueSegments(
  db: pg.Pool,
  tableOid: number,
  segmentBytes: number,
): Promise<DueSegment[]> {
  const { rows } = await db.query(PLAN_OFFLOAD, [tableOid, segmentBytes]);
  return rows.map((r) => ({
    lo: r.range_lo,
    hi: r.range_hi,
    partition: r.partition_table ?? undefined,
  }));
}

export interface WriteSettings {
  chunkBytes: number;
  compressionLevel: number;
}

const WRITE_SETTINGS =
  "SELECT chunk_bytes, compression_level FROM offload.write_settings($1::oid::regclass);";

/** The policy's chunk size and compression level, where it sets them, else the defaults given. */
export async function writeSettings(
  db: pg.Pool,
  tableOid: number,
  defaults: WriteSettings,
): Promise<WriteSettings> {
  const { rows } = await db.query(WRITE_SETTINGS, [tableOid]);
  return {
    chunkBytes: Number(rows[0]?.chunk_bytes ?? defaults.chunkBytes),
    compressionLevel: Number(rows[0]?.compression_level ?? defaults.compressionLevel),
  };
}

/** Queues a job for every attached table that has not had one for `intervalMs`. */
export async function enqueueScheduledJobs(db: pg.Pool, intervalMs: number): Promise<number> {
  const { rowCount } = await db.query(query("enqueue-scheduled-jobs"), [intervalMs]);
  return rowCount ?? 0;
}
