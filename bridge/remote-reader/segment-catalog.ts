import type pg from "pg";
import { ChunkFetcher, SegmentReadError, type IndexedChunk } from "../chunk-fetcher.ts";
import { columnMapper, type ReadPlan, type RowMapper } from "../column-mapper.ts";
import { idempotentQuery } from "../db.ts";
import { failpoint } from "../failpoints.ts";
import { describeError } from "../../storage/describe-error.ts";
import { ColdReadError, type AuthorizedTable, type RemoteRelationName } from "./cold-data.ts";
import { ShapeCache } from "./shape-cache.ts";
import type { ChunkSource, SegmentCatalog, SegmentChunk, SegmentShape } from "./segment-source.ts";

/** The schema postgres_fdw segment tables name (offload.segment_table_server). */
const REMOTE_SCHEMA = "pg_offload";
const RELATION_NAME = /^segment_(\d+)_epoch_(\d+)$/;

/** What every scan checks (offload.remote_segment_head). */
interface HeadRow {
  table_oid: number;
  table: string;
  state: string;
  epoch_exists: boolean;
  from_store: boolean;
  columns: SegmentShape["columns"];
  /** Changes whenever the read plan or the chunks' statistics under today's names could. */
  version: string;
}

/** What is computed again only when the version changes (offload.remote_segment_shape). */
interface ShapeRow extends HeadRow {
  read_plan: ReadPlan | null;
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

/** The part of a shape kept between scans of a (segment, epoch) while its version holds. */
interface KeptShape {
  chunks: SegmentChunk[];
  /** Maps stored rows to today's columns; undefined when they already match. */
  mapColumns: RowMapper | undefined;
  /** By seq, what the chunk fetcher needs (from_store is the scan's own). */
  stored: Map<number, Omit<IndexedChunk, "from_store">>;
}

/** A shape with what the chunk source needs to fetch and map its chunks. */
interface FetchableShape extends SegmentShape {
  fetchable: KeptShape & { fromStore: boolean };
}

/**
 * The head of every scan, and the rest of the shape only when the version the endpoint holds
 * (or none, $3 NULL) is not the current one: one round trip either way. The head is computed
 * first (FROM before the target list), so a shape is never kept under a newer version than the
 * catalog it was computed from.
 */
const SHAPE_SQL = `SELECT h AS head,
       CASE WHEN h ->> 'version' IS DISTINCT FROM $3 THEN offload.remote_segment_shape($1, $2) END AS shape
  FROM offload.remote_segment_head($1, $2) AS h`;

/** (segment, epoch) pairs whose read plan and chunks a bridge keeps (default). */
const KEPT_SHAPES = 256;

/**
 * The catalog side of the SQL endpoint: which table a login reads, what a relation name stands
 * for (a segment of that table at an epoch), and its chunks, fetched and verified as the file
 * reader's are (bridge/chunk-fetcher.ts) and mapped to the segment table's columns of today.
 */
export class RemoteSegmentCatalog implements SegmentCatalog, ChunkSource {
  private readonly kept: ShapeCache<KeptShape>;

  constructor(
    private readonly db: pg.Pool,
    private readonly chunks: ChunkFetcher,
    keptShapes = KEPT_SHAPES,
  ) {
    this.kept = new ShapeCache(keptShapes);
  }

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
    const key = `${segment}:${epoch}`;
    // A second try only when another scan replaced the entry between the query and the lookup.
    for (let attempt = 1; ; attempt++) {
      const known = attempt === 1 ? (this.kept.versionOf(key) ?? null) : null;
      const { rows } = await idempotentQuery<{ head: HeadRow | null; shape: ShapeRow | null }>(
        this.db,
        SHAPE_SQL,
        [segment, epoch, known],
      );
      const head = checkedHead(segment, epoch, tableOid, rows[0]?.head);
      const fresh = rows[0]?.shape;
      if (fresh) this.kept.set(key, head.version, kept(fresh));
      const shape = this.kept.get(key, head.version);
      if (shape) return toShape(segment, epoch, head, shape);
      if (attempt >= 2)
        throw new ColdReadError(
          `pg-offload: segment ${segment} of ${head.table} changed while it was read; run the query again`,
          "40001",
        );
    }
  }

  async fetch(shape: SegmentShape, seq: number, signal: AbortSignal): Promise<Buffer> {
    const { fetchable } = shape as FetchableShape;
    const stored = fetchable.stored.get(seq);
    if (!stored) throw new SegmentReadError(`no chunk ${seq}`, shape.table, shape.segment);
    const chunk: IndexedChunk = { ...stored, from_store: fetchable.fromStore };
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

/** The head, if the segment is one of `tableOid`'s, committed, with that epoch; else refused. */
function checkedHead(
  segment: number,
  epoch: number,
  tableOid: number,
  head: HeadRow | null | undefined,
): HeadRow {
  if (!head || Number(head.table_oid) !== tableOid) {
    // Another table's segment is as unknown to this login as one that never existed.
    throw new ColdReadError(
      `pg-offload: segment ${segment} is not a segment of the table this server reads`,
      "42501",
    );
  }
  if (head.state !== "committed" || !head.epoch_exists) {
    const problem = head.state !== "committed" ? `is ${head.state}` : `has no epoch ${epoch}`;
    throw new ColdReadError(
      `pg-offload: segment ${segment} of ${head.table} ${problem}; run the query again`,
      "40001",
    );
  }
  return head;
}

function kept(row: ShapeRow): KeptShape {
  return {
    chunks: row.chunks.map((c) => ({
      seq: c.seq,
      rows: Number(c.rows),
      rawBytes: Number(c.raw_bytes),
      bounds: c.bounds,
      nulls: c.nulls,
    })),
    mapColumns: columnMapper(row.read_plan),
    stored: new Map(row.chunks.map((c) => [c.seq, c])),
  };
}

/** Today's head with the kept part: the columns and whether to read the store are the scan's own. */
function toShape(segment: number, epoch: number, head: HeadRow, shape: KeptShape): FetchableShape {
  return {
    segment,
    epoch,
    table: head.table,
    columns: head.columns,
    chunks: shape.chunks,
    rows: shape.chunks.reduce((sum, c) => sum + c.rows, 0),
    rawBytes: shape.chunks.reduce((sum, c) => sum + c.rawBytes, 0),
    fetchable: { ...shape, fromStore: head.from_store },
  };
}
