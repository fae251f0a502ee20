import { afterAll, describe, expect, it } from "vitest";
import { chunkEncoder, INLINE_ENCODER } from "../../storage/chunk-encoder.ts";
import { decodeChunk, encodeChunk } from "../../storage/chunk-format.ts";
import { chunkKey } from "../../storage/chunk-keys.ts";

const copyText = (rows: number) =>
  Buffer.from(
    Array.from({ length: rows }, (_, i) => `${i}\tvalue ${i}\t\\N\tline\\nbreak\n`).join(""),
  );

describe("chunkEncoder on worker threads", () => {
  const threads = chunkEncoder(2);
  afterAll(() => threads.close());

  it("stores exactly what encoding on the event loop stores", async () => {
    const raw = copyText(20_000);
    // A view into a larger buffer, as the COPY chunker hands them over.
    const view = Buffer.concat([Buffer.from("junk"), raw]).subarray(4);
    const options = { rows: 20_000, compressionLevel: 3 };
    const stored = await threads.encode(view, options);
    expect(stored.equals(encodeChunk(raw, options))).toBe(true);
    expect(stored.equals(await INLINE_ENCODER.encode(raw, options))).toBe(true);
    expect(view.equals(raw)).toBe(true); // the caller's buffer is left as it was
  });

  it("encrypts in the worker with the key it is given", async () => {
    const key = chunkKey(Buffer.alloc(32, 7));
    const raw = copyText(100);
    const objectKey = "inst/s1-ab/e1/000001.chunk";
    const stored = await threads.encode(raw, {
      rows: 100,
      compressionLevel: 3,
      encryptWith: { ...key, objectKey },
    });
    const keys = { current: key, byId: new Map([[key.id, key]]) };
    expect(decodeChunk(stored, undefined, { objectKey, keys }).raw.equals(raw)).toBe(true);
  });

  it("an encoding error rejects the call, and the pool goes on working", async () => {
    await expect(threads.encode(copyText(1), { rows: 1, compressionLevel: 99 })).rejects.toThrow(
      /compression level/,
    );
    const stored = await threads.encode(copyText(3), { rows: 3, compressionLevel: 1 });
    expect(decodeChunk(stored).rows).toBe(3);
  });
});
