import type pg from "pg";
import { copyTextColumns } from "./copy-text.ts";

/** A column whose exact bounds each chunk records (offload.chunk_bound_columns). */
export interface BoundColumn {
  name: string;
  /** Its place among the fields of the COPY text. */
  field: number;
  /** The type its text is decoded as (a domain's base type). */
  decode_as: string;
  /** Its collation, qualified and quoted; null for types without one. */
  collation: string | null;
}

/**
 * {"field": [min, max]} over a chunk's non-null values, keyed by the column's place among the
 * stored fields (names change with renames; offload.remote_segment_shape maps places to today's
 * columns); a column all NULL in the chunk is absent.
 */
export type ChunkBounds = Record<string, [string, string]>;

export async function boundColumns(db: pg.Pool, tableOid: number): Promise<BoundColumn[]> {
  const { rows } = await db.query<BoundColumn>(
    "SELECT name, field, decode_as, collation FROM offload.chunk_bound_columns($1::oid::regclass)",
    [tableOid],
  );
  return rows;
}

/**
 * Computes a chunk's bounds, PostgreSQL ordering the values by the column's own type and
 * collation (ORDER BY ... LIMIT 1 works for every orderable type, where min() and max() do not
 * exist for all of them). The values are sent as text and decoded as the column's type; the
 * bounds come back as that type's text, in the bridge's session settings, to be decoded again.
 */
export function chunkBoundsOf(
  db: pg.Pool,
  columns: readonly BoundColumn[],
): ((raw: Buffer) => Promise<ChunkBounds>) | undefined {
  if (columns.length === 0) return undefined;
  const sql = boundsQuery(columns);
  return async (raw) => {
    const values = copyTextColumns(
      raw,
      columns.map((c) => c.field),
    );
    const { rows } = await db.query({ text: sql, values, rowMode: "array" });
    const ends = (rows[0] ?? []) as Array<string | null>;
    const bounds: ChunkBounds = {};
    columns.forEach((column, i) => {
      const [lo, hi] = [ends[2 * i], ends[2 * i + 1]];
      if (lo != null && hi != null) bounds[String(column.field)] = [lo, hi];
    });
    return bounds;
  };
}

/** One row: the least and greatest value of each column, in order. */
function boundsQuery(columns: readonly BoundColumn[]): string {
  const ends = columns.flatMap((column, i) => {
    const typed = `v::${column.decode_as}${column.collation ? ` COLLATE ${column.collation}` : ""}`;
    const values = `SELECT ${typed} AS x FROM unnest($${i + 1}::text[]) v WHERE v IS NOT NULL`;
    return ["ASC", "DESC"].map(
      (order) => `(SELECT x::text FROM (${values}) s ORDER BY x ${order} LIMIT 1)`,
    );
  });
  return `SELECT ${ends.join(", ")}`;
}
