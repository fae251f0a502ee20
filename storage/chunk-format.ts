/**
 * The stored form of one chunk of COPY text: a fixed 32-byte header, then the payload.
 *
 *   offset  size  field (little endian)
 *        0     4  magic "PGOF"
 *        4     2  format version (1)
 *        6     1  codec: 0 = none, 1 = zstd
 *        7     1  flags: bit 0 = payload encrypted (AES-256-GCM), other bits zero
 *        8     4  rows
 *       12     4  raw length (bytes of COPY text)
 *       16     4  payload length (bytes after the header)
 *       20     4  CRC32C of the payload
 *       24     4  encryption key id when encrypted, else zero
 *       28     4  CRC32C of bytes 0..27
 *
 * The payload CRC covers what is stored, so damage is found before decryption or decompression
 * runs on it, and the header has its own CRC so that a damaged length or row count is never
 * believed. An encrypted payload is the compressed bytes sealed by storage/chunk-cipher.ts, with
 * the header (bar its CRCs) and the object key as associated data. Chunks written before
 * encryption existed have flags 0 and read as they always did. Encoding and decoding are
 * synchronous on purpose: they are meant to move to worker threads as they are.
 */
import { crc32c } from "@node-rs/crc32";
import { constants, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { openPayload, SEAL_OVERHEAD_BYTES, sealPayload } from "./chunk-cipher.ts";
import { describeError } from "./describe-error.ts";
import { NO_KEYS, type ChunkKey, type ChunkKeyring } from "./chunk-keys.ts";

export const CHUNK_HEADER_BYTES = 32;
export const CHUNK_FORMAT_VERSION = 1;
export const CHUNK_MAGIC = Buffer.from("PGOF", "latin1");

export const CODEC_NONE = 0;
export const CODEC_ZSTD = 1;
export const FLAG_ENCRYPTED = 1;

const HEADER_CRC_OFFSET = 28;
const MAX_U32 = 0xffff_ffff;
const MAX_ZSTD_LEVEL = 22;

export interface ChunkHeader {
  version: number;
  codec: number;
  flags: number;
  rows: number;
  rawLength: number;
  payloadLength: number;
  payloadCrc32c: number;
  /** Set when the payload is encrypted: the id of the key it needs. */
  keyId?: number;
}

/** How an encrypted chunk is sealed or opened: the key(s) and the object key it is bound to. */
export interface ChunkSealing {
  objectKey: string;
}

export type ChunkFormatReason =
  | "bad magic"
  | "truncated"
  | "checksum mismatch"
  | "length mismatch"
  | "corrupt payload"
  | `unsupported version ${number}`
  | `unsupported codec ${number}`
  | `unsupported flags ${number}`
  | "unknown key"
  | "authentication failed";

/** A stored chunk that cannot be trusted; `reason` is short and stable, for messages and tests. */
export class ChunkFormatError extends Error {
  override readonly name = "ChunkFormatError";

  constructor(
    readonly reason: ChunkFormatReason,
    detail?: string,
    context?: string,
    options?: ErrorOptions,
  ) {
    const parts = [`chunk: ${reason}`, detail, context].filter(Boolean);
    super(parts.join(", "), options);
  }
}

export function encodeChunk(
  raw: Buffer,
  options: { rows: number; compressionLevel: number; encryptWith?: ChunkKey & ChunkSealing },
): Buffer {
  const { rows, compressionLevel, encryptWith } = options;
  if (!Number.isInteger(rows) || rows < 0 || rows > MAX_U32) {
    throw new RangeError(`chunk rows must be a u32, got ${rows}`);
  }
  if (raw.length > MAX_U32) throw new RangeError(`chunk of ${raw.length} bytes exceeds 4 GiB`);
  if (!Number.isInteger(compressionLevel) || compressionLevel > MAX_ZSTD_LEVEL) {
    throw new RangeError(`compression level must be an integer up to 22, got ${compressionLevel}`);
  }
  // zstd reads level 0 as "its default level"; for us 0 means "store uncompressed".
  const codec = compressionLevel === 0 ? CODEC_NONE : CODEC_ZSTD;
  const packed =
    codec === CODEC_NONE
      ? raw
      : zstdCompressSync(raw, {
          params: { [constants.ZSTD_c_compressionLevel]: compressionLevel },
        });
  const payloadLength = packed.length + (encryptWith ? SEAL_OVERHEAD_BYTES : 0);

  const header = Buffer.alloc(CHUNK_HEADER_BYTES);
  CHUNK_MAGIC.copy(header, 0);
  header.writeUInt16LE(CHUNK_FORMAT_VERSION, 4);
  header.writeUInt8(codec, 6);
  header.writeUInt8(encryptWith ? FLAG_ENCRYPTED : 0, 7);
  header.writeUInt32LE(rows, 8);
  header.writeUInt32LE(raw.length, 12);
  header.writeUInt32LE(payloadLength, 16);
  header.writeUInt32LE(encryptWith?.id ?? 0, 24);
  const payload = encryptWith
    ? sealPayload(packed, encryptWith, associatedData(header, encryptWith))
    : packed;
  header.writeUInt32LE(crc32c(payload), 20);
  header.writeUInt32LE(crc32c(header.subarray(0, HEADER_CRC_OFFSET)), HEADER_CRC_OFFSET);
  return Buffer.concat([header, payload]);
}

/** What the seal authenticates besides the payload: the header without its CRCs, the object key. */
function associatedData(header: Buffer, sealing: ChunkSealing): Buffer {
  return Buffer.concat([
    header.subarray(0, 20),
    header.subarray(24, HEADER_CRC_OFFSET),
    Buffer.from(sealing.objectKey),
  ]);
}

/**
 * Reads and verifies the header (magic, version, header CRC, codec, flags). The payload is not
 * looked at; decodeChunk does that.
 */
export function readChunkHeader(buf: Uint8Array, context?: string): ChunkHeader {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const magicBytes = Math.min(b.length, CHUNK_MAGIC.length);
  if (!b.subarray(0, magicBytes).equals(CHUNK_MAGIC.subarray(0, magicBytes))) {
    throw new ChunkFormatError(
      "bad magic",
      `starts with 0x${b.subarray(0, 4).toString("hex")}`,
      context,
    );
  }
  if (b.length < CHUNK_HEADER_BYTES) {
    throw new ChunkFormatError("truncated", `${b.length} bytes, shorter than the header`, context);
  }
  const version = b.readUInt16LE(4);
  const headerCrcOk =
    crc32c(b.subarray(0, HEADER_CRC_OFFSET)) === b.readUInt32LE(HEADER_CRC_OFFSET);
  // Version before the header CRC: a later version may lay its header out differently.
  if (version !== CHUNK_FORMAT_VERSION) {
    const hint = headerCrcOk ? undefined : "or a damaged header";
    throw new ChunkFormatError(`unsupported version ${version}`, hint, context);
  }
  if (!headerCrcOk) throw new ChunkFormatError("checksum mismatch", "in the header", context);
  const header: ChunkHeader = {
    version,
    codec: b.readUInt8(6),
    flags: b.readUInt8(7),
    rows: b.readUInt32LE(8),
    rawLength: b.readUInt32LE(12),
    payloadLength: b.readUInt32LE(16),
    payloadCrc32c: b.readUInt32LE(20),
    keyId: b.readUInt8(7) === FLAG_ENCRYPTED ? b.readUInt32LE(24) : undefined,
  };
  if (header.codec !== CODEC_NONE && header.codec !== CODEC_ZSTD) {
    throw new ChunkFormatError(`unsupported codec ${header.codec}`, undefined, context);
  }
  if ((header.flags & ~FLAG_ENCRYPTED) !== 0 || (!header.keyId && b.readUInt32LE(24) !== 0)) {
    throw new ChunkFormatError(
      `unsupported flags ${header.flags}`,
      "or reserved bytes set",
      context,
    );
  }
  return header;
}

/**
 * Verifies a stored chunk completely and returns its COPY text. Never returns data that differs
 * from what was encoded: every mismatch throws ChunkFormatError, with `context` (say table,
 * segment and key) appended to its message. An encrypted chunk needs its key among `keys` and the
 * object key it was stored under. With codec "none" and no encryption the returned `raw` is a
 * view of `stored`, not a copy.
 */
export function decodeChunk(
  stored: Uint8Array,
  context?: string,
  sealing?: ChunkSealing & { keys: ChunkKeyring },
): { raw: Buffer; rows: number } {
  const header = readChunkHeader(stored, context);
  const actual = stored.length - CHUNK_HEADER_BYTES;
  if (actual < header.payloadLength) {
    throw new ChunkFormatError(
      "truncated",
      `payload has ${actual} of ${header.payloadLength} bytes`,
      context,
    );
  }
  if (actual > header.payloadLength) {
    throw new ChunkFormatError(
      "length mismatch",
      `${actual - header.payloadLength} bytes after the payload`,
      context,
    );
  }
  const payload = Buffer.from(stored.buffer, stored.byteOffset + CHUNK_HEADER_BYTES, actual);
  if (crc32c(payload) !== header.payloadCrc32c) {
    throw new ChunkFormatError("checksum mismatch", "in the payload", context);
  }
  const packed =
    header.keyId === undefined
      ? payload
      : unseal(payload, stored, header.keyId, sealing ?? { objectKey: "", keys: NO_KEYS }, context);
  const raw = header.codec === CODEC_NONE ? packed : inflate(packed, header.rawLength, context);
  if (raw.length !== header.rawLength) {
    throw new ChunkFormatError(
      "length mismatch",
      `decoded ${raw.length} bytes, header says ${header.rawLength}`,
      context,
    );
  }
  return { raw, rows: header.rows };
}

function unseal(
  payload: Buffer,
  stored: Uint8Array,
  keyId: number,
  sealing: ChunkSealing & { keys: ChunkKeyring },
  context: string | undefined,
): Buffer {
  const key = sealing.keys.byId.get(keyId);
  const idHex = keyId.toString(16).padStart(8, "0");
  if (!key) {
    const detail = `encrypted with key ${idHex}, which is not among the configured keys`;
    throw new ChunkFormatError("unknown key", detail, context);
  }
  const header = Buffer.from(stored.buffer, stored.byteOffset, CHUNK_HEADER_BYTES);
  const plain = openPayload(payload, key, associatedData(header, sealing));
  if (!plain) {
    const detail = `key ${idHex}: altered, or stored under another object key`;
    throw new ChunkFormatError("authentication failed", detail, context);
  }
  return plain;
}

/** Never more than the header's length: a forged frame cannot make the reader allocate more. */
function inflate(payload: Buffer, rawLength: number, context: string | undefined): Buffer {
  try {
    return zstdDecompressSync(payload, { maxOutputLength: Math.max(rawLength, 1) });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      const detail = `decodes to more than the ${rawLength} bytes the header says`;
      throw new ChunkFormatError("length mismatch", detail, context, { cause: error });
    }
    // The CRC matched, so the writer itself produced this: a bug, not damage in storage.
    throw new ChunkFormatError("corrupt payload", describeError(error), context, {
      cause: error,
    });
  }
}
