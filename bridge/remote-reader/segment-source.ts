/**
 * What the remote reader needs from the catalog and the object store, implemented by the
 * integrator: the shape of a segment (its columns and chunks, with block statistics) and the
 * chunks' COPY text.
 */
import type { RemoteRelationName } from "./cold-data.ts";

export interface SegmentColumn {
  name: string;
  /** format_type(atttypid, atttypmod) of the column. */
  type: string;
  /**
   * The type to decode the column's text as: the same as `type`, or a domain's base type (with
   * typmod), or an array of it. Spelled so that it resolves under search_path = pg_catalog
   * (format_type run with search_path = pg_catalog qualifies every other schema's type).
   */
  decodeAs: string;
  /** Quoted collation name ("C", "de-x-icu") when it differs from the type's default, else null. */
  collation: string | null;
  /**
   * False when decoding could run code the table owner wrote (composite types, ranges over
   * domains, anything containing those): such a column can only be streamed as stored.
   */
  decodable: boolean;
}

/**
 * Block statistics of one chunk.
 *
 * `bounds[col] = [min, max]`: the exact min() and max() of the column over the chunk's non-null
 * values, as PostgreSQL's min/max aggregates compute them for the column (its type's default btree
 * ordering, under the column's collation), in the type's text output (the bridge's session
 * settings). Only for types whose min/max follow the default btree opclass (every built-in one
 * does). Absent: unknown (or no non-null value).
 *
 * `nulls[col]`: how many of the chunk's rows are NULL in the column. Absent (or `nulls` missing):
 * unknown. With it, `col IS NULL` skips chunks with none and comparisons skip all-null chunks.
 */
export interface SegmentChunk {
  seq: number;
  rows: number;
  rawBytes: number;
  bounds: Record<string, [string, string]> | null;
  nulls?: Record<string, number> | null;
}

export interface SegmentShape {
  segment: number;
  epoch: number;
  /** regclass text, for messages. */
  table: string;
  /** The columns the chunks' COPY text has, in order (today's columns of the segment table). */
  columns: SegmentColumn[];
  chunks: SegmentChunk[];
  rows: number;
  rawBytes: number;
}

export interface SegmentCatalog {
  /**
   * The segment a relation postgres_fdw names stands for; throws ColdReadError 42501 if it is not
   * one of `tableOid`'s committed segments, 42P01 if unknown.
   */
  segmentOf(tableOid: number, relation: RemoteRelationName): Promise<SegmentShape>;
}

export interface ChunkSource {
  /**
   * The chunk's COPY text (text format, tab-separated, \N for NULL, backslash escapes), already
   * mapped to `shape.columns`.
   */
  fetch(shape: SegmentShape, seq: number, signal: AbortSignal): Promise<Buffer>;
}
