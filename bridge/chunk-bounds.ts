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
 * {"field": [min, max, nulls]}: the least and greatest non-null value of a column over a chunk's
 * rows (null when every value is NULL) and how many are NULL, keyed by the column's place among
 * the stored fields (names change with renames; offload.remote_segment_shape maps places to
 * today's columns).
 */
export type ChunkBounds = Record<string, [string | null, string | null, number]>;

export async function boundColumns(db: pg.Pool, tableOid: number): Promise<BoundColumn[]> {
  const { rows } = await db.query<BoundColumn>(
    "SELECT name, field, decode_as, collation_name AS collation FROM offload.chunk_bound_columns($1::oid::regclass)",
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
      const nulls = values[i]?.filter((v) => v === null).length ?? 0;
      bounds[String(column.field)] = [ends[2 * i] ?? null, ends[2 * i + 1] ?? null, nulls];
    });
    return bounds;
  };
}

/**
 * One row: the least and greatest value of each column, in order. ORDER BY names the subquery's
 * column: a bare `x` would be the output column, the text, and sort as text.
 */
function boundsQuery(columns: readonly BoundColumn[]): string {
  const ends = columns.flatMap((column, i) => {
    const typed = `v::${column.decode_as}${column.collation ? ` COLLATE ${column.collation}` : ""}`;
    const values = `SELECT ${typed} AS x FROM unnest($${i + 1}::text[]) v WHERE v IS NOT NULL`;
    return ["ASC", "DESC"].map(
      (order) => `(SELECT x::text FROM (${values}) s ORDER BY s.x ${order} LIMIT 1)`,
    );
  });
  return `SELECT ${ends.join(", ")}`;
}
