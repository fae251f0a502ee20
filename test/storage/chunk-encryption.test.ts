import { crc32c } from "@node-rs/crc32";
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configFromEnv } from "../../bridge/config.ts";
import {
  CHUNK_HEADER_BYTES,
  ChunkFormatError,
  decodeChunk,
  encodeChunk,
  FLAG_ENCRYPTED,
  readChunkHeader,
} from "../../storage/chunk-format.ts";
import {
  chunkKey,
  ChunkKeyError,
  type ChunkKeyring,
  loadKeyring,
  NO_KEYS,
  parseChunkKey,
} from "../../storage/chunk-keys.ts";

const OBJECT_KEY = "inst/s7-0a0b0c0d/e0/000003.chunk";
const PLAIN = Buffer.from(
  "1\tsecret-needle żółć\t\\N\n2\tsecret-needle 日本語\t{1,2}\n".repeat(50),
);

const keyA = chunkKey(randomBytes(32));
const keyB = chunkKey(randomBytes(32));
const ring = (...keys: (typeof keyA)[]): ChunkKeyring => ({
  current: keys[0],
  byId: new Map(keys.map((k) => [k.id, k])),
});

function sealed(compressionLevel = 0, objectKey = OBJECT_KEY): Buffer {
  return encodeChunk(PLAIN, { rows: 100, compressionLevel, encryptWith: { ...keyA, objectKey } });
}

function rejection(run: () => unknown): ChunkFormatError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ChunkFormatError);
    return error as ChunkFormatError;
  }
  throw new Error("the chunk was accepted");
}

describe("chunk encryption", () => {
  it.each([0, 3])("round-trips at compression level %i and stores no plaintext", (level) => {
    const stored = sealed(level);
    const header = readChunkHeader(stored);
    expect(header.flags).toBe(FLAG_ENCRYPTED);
    expect(header.keyId).toBe(keyA.id);
    expect(stored.includes("secret-needle")).toBe(false);
    const decoded = decodeChunk(stored, undefined, { objectKey: OBJECT_KEY, keys: ring(keyA) });
    expect(decoded).toEqual({ raw: PLAIN, rows: 100 });
    // The control: the same chunk stored unencrypted and uncompressed shows the needle.
    expect(encodeChunk(PLAIN, { rows: 100, compressionLevel: 0 }).includes("secret-needle")).toBe(
      true,
    );
  });

  it("nonces differ: the same rows never encrypt to the same bytes", () => {
    expect(sealed().equals(sealed())).toBe(false);
  });

  it("reads chunks written without encryption, with or without keys", () => {
    const plain = encodeChunk(PLAIN, { rows: 100, compressionLevel: 3 });
    expect(readChunkHeader(plain).keyId).toBeUndefined();
    expect(decodeChunk(plain).raw).toEqual(PLAIN);
    expect(decodeChunk(plain, undefined, { objectKey: "x", keys: ring(keyB) }).raw).toEqual(PLAIN);
  });

  it("names the key a chunk needs when the reader lacks it", () => {
    const stored = sealed();
    const error = rejection(() =>
      decodeChunk(stored, "object k", { objectKey: OBJECT_KEY, keys: ring(keyB) }),
    );
    expect(error.reason).toBe("unknown key");
    expect(error.message).toContain(`encrypted with key ${keyA.idHex}`);
    expect(rejection(() => decodeChunk(stored)).reason).toBe("unknown key");
    expect(
      rejection(() => decodeChunk(stored, undefined, { objectKey: "", keys: NO_KEYS })).reason,
    ).toBe("unknown key");
  });

  it("fails authentication for a chunk moved to another object key", () => {
    const stored = sealed(3, "inst/s7-0a0b0c0d/e0/000004.chunk");
    const error = rejection(() =>
      decodeChunk(stored, undefined, { objectKey: OBJECT_KEY, keys: ring(keyA) }),
    );
    expect(error.reason).toBe("authentication failed");
  });

  it("fails authentication when ciphertext or header is altered and the CRCs recomputed", () => {
    const keys = ring(keyA);
    const flipPayload = sealed();
    flipPayload[CHUNK_HEADER_BYTES + 40]! ^= 0x01;
    const flipRows = sealed();
    flipRows.writeUInt32LE(99, 8);
    for (const stored of [flipPayload, flipRows]) {
      const payload = stored.subarray(CHUNK_HEADER_BYTES);
      stored.writeUInt32LE(crc32c(payload), 20);
      stored.writeUInt32LE(crc32c(stored.subarray(0, 28)), 28);
      const error = rejection(() =>
        decodeChunk(stored, undefined, { objectKey: OBJECT_KEY, keys }),
      );
      expect(error.reason).toBe("authentication failed");
    }
  });

  it("finds damage by CRC before any decryption", () => {
    const stored = sealed();
    stored[stored.length - 1]! ^= 0xff;
    const error = rejection(() =>
      decodeChunk(stored, undefined, { objectKey: OBJECT_KEY, keys: ring(keyA) }),
    );
    expect(error.reason).toBe("checksum mismatch");
  });
});

describe("chunk keys", () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pgo-keys-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  async function keyFile(name: string, text: string, mode = 0o600): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, text);
    await chmod(path, mode);
    return path;
  }

  it("parses hex and base64, derives a stable id, and refuses anything else", () => {
    const secret = randomBytes(32);
    const hex = parseChunkKey(`${secret.toString("hex")}\n`, "test");
    const b64 = parseChunkKey(secret.toString("base64"), "test");
    expect(hex.id).toBe(b64.id);
    expect(hex.idHex).toMatch(/^[0-9a-f]{8}$/);
    for (const bad of [
      "",
      "abc",
      secret.toString("hex").slice(2),
      randomBytes(16).toString("hex"),
    ]) {
      expect(() => parseChunkKey(bad, "PGOFFLOAD_ENCRYPTION_KEY")).toThrow(
        /PGOFFLOAD_ENCRYPTION_KEY: must hold 32 random bytes/,
      );
    }
  });

  it("loads the current key and older ones from files, by id", async () => {
    const a = await keyFile("a", keyA.secret.toString("hex"));
    const b = await keyFile("b", keyB.secret.toString("base64"));
    const keys = await loadKeyring({ current: { source: b, file: b }, previousFiles: [a] });
    expect(keys.current?.id).toBe(keyB.id);
    expect([...keys.byId.keys()].sort()).toEqual([keyA.id, keyB.id].sort());
  });

  it("refuses a key file others can read, and a missing one, naming the file", async () => {
    const loose = await keyFile("loose", keyA.secret.toString("hex"), 0o644);
    await expect(
      loadKeyring({ current: { source: loose, file: loose }, previousFiles: [] }),
    ).rejects.toThrow(`pg-offload encryption key ${loose}: is readable by other users (mode 644)`);
    const missing = join(dir, "missing");
    await expect(loadKeyring({ previousFiles: [missing] })).rejects.toThrow(ChunkKeyError);
    await expect(loadKeyring({ previousFiles: [missing] })).rejects.toThrow(missing);
  });

  it("takes the key from one place only", () => {
    const env = { PGOFFLOAD_DATABASE_URL: "postgres://x/y" };
    expect(() =>
      configFromEnv({ ...env, PGOFFLOAD_ENCRYPTION_KEY: "k", PGOFFLOAD_ENCRYPTION_KEY_FILE: "/k" }),
    ).toThrow(/both set/);
    const config = configFromEnv({
      ...env,
      PGOFFLOAD_ENCRYPTION_KEY_FILE: "/etc/pg-offload/key",
      PGOFFLOAD_DECRYPTION_KEY_FILES: "/etc/pg-offload/old-1, /etc/pg-offload/old-2",
    });
    expect(config.encryptionKeys).toEqual({
      current: { source: "/etc/pg-offload/key", file: "/etc/pg-offload/key" },
      previousFiles: ["/etc/pg-offload/old-1", "/etc/pg-offload/old-2"],
    });
    expect(configFromEnv(env).encryptionKeys).toEqual({ current: undefined, previousFiles: [] });
  });
});
