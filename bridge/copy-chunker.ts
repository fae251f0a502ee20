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

/** The length up to and including the first newline at or past `target` bytes; 0 if none. */
function rowEndAtOrAfter(data: Buffer, target: number): number {
  if (data.length < target) return 0;
  return data.indexOf(NEWLINE, target - 1) + 1;
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
      let rest = Buffer.concat(this.pending, this.pendingBytes);
      // Cut after the first row that reaches the target, as often as the buffer allows.
      for (let cut = rowEndAtOrAfter(rest, this.targetBytes); cut > 0;) {
        this.emitChunk(rest.subarray(0, cut));
        rest = rest.subarray(cut);
        cut = rowEndAtOrAfter(rest, this.targetBytes);
      }
      this.pending = rest.length > 0 ? [rest] : [];
      this.pendingBytes = rest.length;
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
