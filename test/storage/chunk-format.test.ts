import { crc32c } from "@node-rs/crc32";
import { describe, expect, it } from "vitest";
import {
  CHUNK_HEADER_BYTES,
  ChunkFormatError,
  decodeChunk,
  encodeChunk,
  readChunkHeader,
} from "../../storage/chunk-format.ts";

function copyText(rows: number): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < rows; i++) {
    lines.push(
      `${i}\t2024-01-${String((i % 28) + 1).padStart(2, "0")} 00:00:00+00\tuser-${i % 97}\t\\N\n`,
    );
  }
  return Buffer.from(lines.join(""));
}

/** Runs decodeChunk and returns the ChunkFormatError it must throw. */
function rejection(stored: Buffer, context?: string): ChunkFormatError {
  let result: unknown;
  try {
    result = decodeChunk(stored, context);
  } catch (error) {
    expect(error).toBeInstanceOf(ChunkFormatError);
    return error as ChunkFormatError;
  }
  throw new Error(`decodeChunk accepted a damaged chunk: ${JSON.stringify(result).slice(0, 80)}`);
}

/** Rewrites the header CRC, as a writer of a different format would have. */
function resealHeader(stored: Buffer): Buffer {
  stored.writeUInt32LE(crc32c(stored.subarray(0, 28)), 28);
  return stored;
}

describe("chunk format", () => {
  it.each([
    ["an empty chunk", 0, 3],
    ["an empty chunk, uncompressed", 0, 0],
    ["one row", 1, 3],
    ["one row, uncompressed", 1, 0],
    ["many rows", 20_000, 3],
    ["many rows, uncompressed", 20_000, 0],
  ])("round-trips %s", (_label, rows, compressionLevel) => {
    const raw = copyText(rows);
    const stored = encodeChunk(raw, { rows, compressionLevel });
    const header = readChunkHeader(stored);
    expect(header).toMatchObject({
      version: 1,
      codec: compressionLevel === 0 ? 0 : 1,
      flags: 0,
      rows,
      rawLength: raw.length,
      payloadLength: stored.length - CHUNK_HEADER_BYTES,
      payloadCrc32c: crc32c(stored.subarray(CHUNK_HEADER_BYTES)),
    });
    if (compressionLevel === 0) expect(stored.subarray(CHUNK_HEADER_BYTES).equals(raw)).toBe(true);
    if (compressionLevel > 0 && rows > 1000) expect(stored.length).toBeLessThan(raw.length / 3);
    const decoded = decodeChunk(stored);
    expect(decoded.rows).toBe(rows);
    expect(decoded.raw.equals(raw)).toBe(true);
  });

  it("lays the header out as documented", () => {
    const stored = encodeChunk(Buffer.from("1\tx\n2\ty\n"), { rows: 2, compressionLevel: 3 });
    expect(stored.subarray(0, 4).toString("latin1")).toBe("PGOF");
    expect(stored.readUInt16LE(4)).toBe(1);
    expect(stored.readUInt8(6)).toBe(1);
    expect(stored.readUInt8(7)).toBe(0);
    expect(stored.readUInt32LE(8)).toBe(2);
    expect(stored.readUInt32LE(12)).toBe(8);
    expect(stored.readUInt32LE(16)).toBe(stored.length - 32);
    expect(stored.readUInt32LE(24)).toBe(0);
    expect(stored.readUInt32LE(28)).toBe(crc32c(stored.subarray(0, 28)));
  });

  it.each([3, 0])(
    "rejects every single-byte change of a stored chunk (level %i)",
    (compressionLevel) => {
      const stored = encodeChunk(copyText(3), { rows: 3, compressionLevel });
      for (let offset = 0; offset < stored.length; offset++) {
        for (let value = 0; value < 256; value++) {
          if (value === stored[offset]) continue;
          const damaged = Buffer.from(stored);
          damaged[offset] = value;
          rejection(damaged);
        }
      }
    },
  );

  it.each([3, 0])("rejects every truncation as truncated (level %i)", (compressionLevel) => {
    const stored = encodeChunk(copyText(3), { rows: 3, compressionLevel });
    for (let length = 0; length < stored.length; length++) {
      expect(rejection(stored.subarray(0, length)).reason, `length ${length}`).toBe("truncated");
    }
  });

  it("names the reason for each kind of damage", () => {
    const stored = encodeChunk(copyText(5), { rows: 5, compressionLevel: 3 });
    const damaged = (change: (b: Buffer) => void) => {
      const copy = Buffer.from(stored);
      change(copy);
      return copy;
    };

    expect(rejection(damaged((b) => b.write("XXXX", 0, "latin1"))).reason).toBe("bad magic");
    expect(rejection(damaged((b) => (b[0] = 0x50 ^ 0x20))).reason).toBe("bad magic");
    expect(rejection(Buffer.from("hello world, not a chunk at all")).reason).toBe("bad magic");

    const future = rejection(resealHeader(damaged((b) => b.writeUInt16LE(2, 4))));
    expect(future.reason).toBe("unsupported version 2");
    expect(future.message).not.toContain("damaged");
    const flipped = rejection(damaged((b) => (b[4]! ^= 0x01)));
    expect(flipped.reason).toBe("unsupported version 0");
    expect(flipped.message).toContain("damaged header");

    expect(rejection(damaged((b) => (b[8]! ^= 0x01))).reason).toBe("checksum mismatch");
    expect(rejection(damaged((b) => (b[stored.length - 5]! ^= 0x40))).reason).toBe(
      "checksum mismatch",
    );
    expect(rejection(Buffer.concat([stored, Buffer.from([0])])).reason).toBe("length mismatch");
    expect(rejection(resealHeader(damaged((b) => b.writeUInt8(7, 6)))).reason).toBe(
      "unsupported codec 7",
    );
    expect(rejection(resealHeader(damaged((b) => b.writeUInt8(2, 7)))).reason).toBe(
      "unsupported flags 2",
    );
    // Bit 0 says "encrypted": a chunk claiming it needs a key this reader does not have.
    expect(rejection(resealHeader(damaged((b) => b.writeUInt8(1, 7)))).reason).toBe("unknown key");
    expect(rejection(resealHeader(damaged((b) => b.writeUInt8(1, 25)))).reason).toBe(
      "unsupported flags 0",
    );
    // Consistent checksums over wrong content: only a buggy writer makes these.
    expect(rejection(resealHeader(damaged((b) => b.writeUInt32LE(41, 12)))).reason).toBe(
      "length mismatch",
    );
    const garbage = Buffer.from("definitely not zstd");
    const bogus = Buffer.concat([stored.subarray(0, CHUNK_HEADER_BYTES), garbage]);
    bogus.writeUInt32LE(garbage.length, 16);
    bogus.writeUInt32LE(crc32c(garbage), 20);
    expect(rejection(resealHeader(bogus)).reason).toBe("corrupt payload");
  });

  it("never decodes more than the header's length: a forged frame cannot make a reader allocate more", () => {
    // 64 MiB of one byte compresses to a few KiB; the header is made to say 100 bytes.
    const bomb = encodeChunk(Buffer.alloc(64 * 1024 * 1024, 0x61), {
      rows: 1,
      compressionLevel: 3,
    });
    expect(bomb.length).toBeLessThan(64 * 1024);
    bomb.writeUInt32LE(100, 12);
    const error = rejection(resealHeader(bomb));
    expect(error.reason).toBe("length mismatch");
    expect(error.message).toContain("decodes to more than the 100 bytes the header says");
  });

  it("appends the caller's context to the message", () => {
    const stored = encodeChunk(copyText(2), { rows: 2, compressionLevel: 3 });
    stored[stored.length - 1]! ^= 0xff;
    const error = rejection(stored, "object a/b.chunk, table events, segment 17");
    expect(error.message).toBe(
      "chunk: checksum mismatch, in the payload, object a/b.chunk, table events, segment 17",
    );
  });

  it("refuses options it cannot encode", () => {
    const raw = copyText(1);
    expect(() => encodeChunk(raw, { rows: -1, compressionLevel: 3 })).toThrow(RangeError);
    expect(() => encodeChunk(raw, { rows: 1.5, compressionLevel: 3 })).toThrow(RangeError);
    expect(() => encodeChunk(raw, { rows: 2 ** 32, compressionLevel: 3 })).toThrow(RangeError);
    expect(() => encodeChunk(raw, { rows: 1, compressionLevel: 23 })).toThrow(RangeError);
    expect(() => encodeChunk(raw, { rows: 1, compressionLevel: 2.5 })).toThrow(RangeError);
  });
});
