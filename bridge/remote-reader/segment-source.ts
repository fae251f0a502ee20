import type { RemoteRelationName } from "./cold-data.ts";

export interface SegmentShape {
  segment: number;
  epoch: number;
  table: string;
  columns: Array<{
    name: string;
    type: string;
    decodeAs: string;
    collation: string | null;
    decodable: boolean;
  }>;
  chunks: Array<{
    seq: number;
    rows: number;
    rawBytes: number;
    bounds: Record<string, [string, string]> | null;
  }>;
  rows: number;
  rawBytes: number;
}

export interface SegmentCatalog {
  segmentOf(tableOid: number, relation: RemoteRelationName): Promise<SegmentShape>;
}

export interface ChunkSource {
  fetch(shape: SegmentShape, seq: number, signal: AbortSignal): Promise<Buffer>;
}
