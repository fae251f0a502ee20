import { Transform, type TransformCallback } from "node:stream";

/** A run of whole COPY text rows. */
export interface RawChunk {
  seq: number;
  data: Buffer;
  rows: number;
}

const NEWLINE = 0x0a;

export function countRows(data: Buffer): number {
  let rows = 0;
  for (let at = data.indexOf(NEWLINE); at !== -1; at = data.indexOf(NEWLINE, at + 1)) rows++;
  return rows;
}

/**
 * Cuts a COPY text stream into chunks of at least `targetBytes` (the last may be smaller), always
 * at a row boundary: in COPY text every row ends with a newline and newlines inside values are
 * escaped, so a chunk is a run of whole rows that can be served on its own.
 */
export class CopyChunker extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private nextSeq = 1;

  constructor(private readonly targetBytes: number) {
    super({ readableObjectMode: true, readableHighWaterMark: 1 });
  }

  override _transform(piece: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.pending.push(piece);
    this.pendingBytes += piece.length;
    if (this.pendingBytes >= this.targetBytes) {
      const joined = Buffer.concat(this.pending, this.pendingBytes);
      const cut = joined.lastIndexOf(NEWLINE) + 1;
      this.pending = cut < joined.length ? [joined.subarray(cut)] : [];
      this.pendingBytes = joined.length - cut;
      if (cut > 0) this.emitChunk(joined.subarray(0, cut));
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    const rest = Buffer.concat(this.pending, this.pendingBytes);
    if (rest.length > 0 && rest[rest.length - 1] !== NEWLINE) {
      done(new Error("pg-offload: COPY output ended in the middle of a row"));
      return;
    }
    if (rest.length > 0) this.emitChunk(rest);
    done();
  }

  private emitChunk(data: Buffer): void {
    this.push({ seq: this.nextSeq++, data, rows: countRows(data) } satisfies RawChunk);
  }
}
