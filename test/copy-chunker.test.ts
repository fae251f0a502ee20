import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { CopyChunker, countRows, type RawChunk } from "../bridge/copy-chunker.ts";

async function chunk(pieces: Buffer[], target: number): Promise<RawChunk[]> {
  const out: RawChunk[] = [];
  const chunker = Readable.from(pieces).pipe(new CopyChunker(target));
  for await (const c of chunker) out.push(c as RawChunk);
  return out;
}

const rows = Array.from(
  { length: 200 },
  (_, i) => `${i}\tvalue \\n with escaped newline ${"x".repeat(i % 37)}\n`,
);
const text = Buffer.from(rows.join(""));

describe("CopyChunker", () => {
  it.each([1, 7, 64, 1000, text.length])(
    "cuts at row ends, whatever the input pieces (%i-byte pieces)",
    async (pieceSize) => {
      const pieces: Buffer[] = [];
      for (let at = 0; at < text.length; at += pieceSize)
        pieces.push(text.subarray(at, at + pieceSize));
      const chunks = await chunk(pieces, 500);
      expect(Buffer.concat(chunks.map((c) => c.data)).equals(text)).toBe(true);
      expect(chunks.map((c) => c.seq)).toEqual(chunks.map((_, i) => i + 1));
      for (const [i, c] of chunks.entries()) {
        expect(c.data[c.data.length - 1]).toBe(0x0a);
        expect(c.rows).toBe(countRows(c.data));
        if (i < chunks.length - 1) expect(c.data.length).toBeGreaterThanOrEqual(500);
        // At most one row past the target.
        expect(c.data.length).toBeLessThan(500 + 100);
      }
      expect(chunks.reduce((sum, c) => sum + c.rows, 0)).toBe(200);
    },
  );

  it("emits nothing for an empty copy", async () => {
    expect(await chunk([], 100)).toEqual([]);
  });

  it("fails when the copy ends in the middle of a row", async () => {
    await expect(chunk([Buffer.from("1\ta\n2\tb")], 100)).rejects.toThrow(/middle of a row/);
  });
});
