import { Piscina } from "piscina";
import { afterAll, describe, expect, it } from "vitest";
import { chunkEncoder, INLINE_ENCODER, transferable } from "../../storage/chunk-encoder.ts";
import encodeInWorker from "../../storage/chunk-encoder-worker.ts";
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

/** True when the bytes are the whole of their ArrayBuffer: what may be transferred. */
const ownsItsBuffer = (bytes: Uint8Array) =>
  bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;

describe("what crosses to and from the encoder threads", () => {
  const threads = chunkEncoder(1);
  afterAll(() => threads.close());

  it("a small chunk, in and out a slice of Node's shared Buffer pool, is encoded on a thread", async () => {
    // Buffer.from of a short string is carved from the pool, and so is the small chunk encoded
    // from it: Node 22 and 24 failed this with DataCloneError and an empty message.
    const raw = Buffer.from("1\tsmall\n");
    expect(ownsItsBuffer(raw)).toBe(false);
    const stored = await threads.encode(raw, { rows: 1, compressionLevel: 3 });
    expect(decodeChunk(stored).raw.equals(raw)).toBe(true);
    expect(raw.toString()).toBe("1\tsmall\n"); // still readable: nothing was detached
  });

  it("the worker moves back bytes that own their whole ArrayBuffer, never a pool slice", () => {
    // The worker's function, run here: what it returns is what Piscina transfers.
    const moved = encodeInWorker({
      raw: new Uint8Array(Buffer.from("1\tsmall\n")),
      options: { rows: 1, compressionLevel: 3 },
    }) as Record<symbol, unknown>;
    const value = moved[Piscina.valueSymbol] as Uint8Array;
    expect(value).toBeInstanceOf(Uint8Array);
    expect(value.byteLength).toBeLessThan(4096); // small enough to come from the pool
    expect(ownsItsBuffer(value)).toBe(true);
    expect(decodeChunk(Buffer.from(value)).rows).toBe(1);
  });

  it("transferable() passes whole buffers through and copies views", () => {
    const whole = new Uint8Array(16).fill(3);
    expect(transferable(whole)).toBe(whole);
    const big = Buffer.from("junk and then the chunk");
    const view = big.subarray(5, 12);
    const copy = transferable(view);
    expect(ownsItsBuffer(copy)).toBe(true);
    expect(Buffer.from(copy).equals(view)).toBe(true);
    expect(big.toString()).toBe("junk and then the chunk"); // the larger buffer is left alone
  });
});
