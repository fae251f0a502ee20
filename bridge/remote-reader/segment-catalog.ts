import type pg from "pg";
import { ChunkFetcher, SegmentReadError, type IndexedChunk } from "../chunk-fetcher.ts";
import { columnMapper, type ReadPlan, type RowMapper } from "../column-mapper.ts";
import { idempotentQuery } from "../db.ts";
import { failpoint } from "../failpoints.ts";
import { describeError } from "../../storage/describe-error.ts";
import { ColdReadError, type AuthorizedTable, type RemoteRelationName } from "./cold-data.ts";
import type { ChunkSource, SegmentCatalog, SegmentShape } from "./segment-source.ts";

/** The schema postgres_fdw segment tables name (offload.segment_table_server). */
const REMOTE_SCHEMA = "pg_offload";
const RELATION_NAME = /^segment_(\d+)_epoch_(\d+)$/;

interface ShapeRow {
  table_oid: number;
  table: string;
  state: string;
  epoch_exists: boolean;
  read_plan: ReadPlan | null;
  from_store: boolean;
  columns: SegmentShape["columns"];
  chunks: Array<{
    seq: number;
    object_key: string;
    rows: number;
    raw_bytes: number;
    stored_bytes: number;
    bounds: Record<string, [string, string]> | null;
    nulls: Record<string, number> | null;
  }>;
}

/** A shape with what the chunk source needs to fetch and map its chunks. */
interface FetchableShape extends SegmentShape {
  fetchable: {
    fromStore: boolean;
    /** Maps stored rows to today's columns; undefined when they already match. */
    mapColumns: RowMapper | undefined;
    chunks: Map<number, IndexedChunk>;
  };
}

/**
 * The catalog side of the SQL endpoint: which table a login reads, what a relation name stands
 * for (a segment of that table at an epoch), and its chunks, fetched and verified as the file
 * reader's are (bridge/chunk-fetcher.ts) and mapped to the segment table's columns of today.
 */
export class RemoteSegmentCatalog implements SegmentCatalog, ChunkSource {
  constructor(
    private readonly db: pg.Pool,
    private readonly chunks: ChunkFetcher,
  ) {}

  async authorize(user: string): Promise<AuthorizedTable | undefined> {
    const { rows } = await idempotentQuery<{ table_oid: number; table_name: string }>(
      this.db,
      "SELECT table_oid, table_name FROM offload.remote_reader_table($1)",
      [user],
    );
    const row = rows[0];
    return row && { table: row.table_name, tableOid: Number(row.table_oid) };
  }

  async segmentOf(tableOid: number, relation: RemoteRelationName): Promise<SegmentShape> {
    const match = RELATION_NAME.exec(relation.name);
    if (relation.schema !== REMOTE_SCHEMA || !match) {
      throw new ColdReadError(
        `pg-offload: relation "${relation.schema}"."${relation.name}" does not exist here`,
        "42P01",
      );
    }
    const [segment, epoch] = [Number(match[1]), Number(match[2])];
    const { rows } = await idempotentQuery<{ shape: ShapeRow | null }>(
      this.db,
      "SELECT offload.remote_segment_shape($1, $2) AS shape",
      [segment, epoch],
    );
    const shape = rows[0]?.shape;
    if (!shape || Number(shape.table_oid) !== tableOid) {
      // Another table's segment is as unknown to this login as one that never existed.
      throw new ColdReadError(
        `pg-offload: segment ${segment} is not a segment of the table this server reads`,
        "42501",
      );
    }
    if (shape.state !== "committed" || !shape.epoch_exists) {
      const problem = shape.state !== "committed" ? `is ${shape.state}` : `has no epoch ${epoch}`;
      throw new ColdReadError(
        `pg-offload: segment ${segment} of ${shape.table} ${problem}; run the query again`,
        "40001",
      );
    }
    return toShape(segment, epoch, shape);
  }

  async fetch(shape: SegmentShape, seq: number, signal: AbortSignal): Promise<Buffer> {
    const { fetchable } = shape as FetchableShape;
    const chunk = fetchable.chunks.get(seq);
    if (!chunk) throw new SegmentReadError(`no chunk ${seq}`, shape.table, shape.segment);
    const raw = await this.chunks.fetch(shape.table, shape.segment, chunk, signal);
    failpoint("after-chunk-served"); // as the file reader's, so fault tests reach both readers
    const map = fetchable.mapColumns;
    if (!map) return raw;
    try {
      return map(raw);
    } catch (error) {
      throw new SegmentReadError(
        describeError(error),
        shape.table,
        shape.segment,
        chunk.object_key ?? undefined,
        { cause: error },
      );
    }
  }
}

function toShape(segment: number, epoch: number, row: ShapeRow): FetchableShape {
  const chunks = row.chunks.map((c) => ({
    seq: c.seq,
    rows: Number(c.rows),
    rawBytes: Number(c.raw_bytes),
    bounds: c.bounds,
    nulls: c.nulls,
  }));
  return {
    segment,
    epoch,
    table: row.table,
    columns: row.columns,
    chunks,
    rows: chunks.reduce((sum, c) => sum + c.rows, 0),
    rawBytes: chunks.reduce((sum, c) => sum + c.rawBytes, 0),
    fetchable: {
      fromStore: row.from_store,
      mapColumns: columnMapper(row.read_plan),
      chunks: new Map(
        row.chunks.map((c) => [c.seq, { ...c, from_store: row.from_store } as IndexedChunk]),
      ),
    },
  };
}
