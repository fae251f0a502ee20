/**
 * Keys for client-side chunk encryption (AES-256-GCM). A key is 32 random bytes, written as 64 hex
 * digits or as base64, in a file only its owner may read or in an environment variable. Its id is
 * derived from the key itself, so a chunk names the key it needs without anyone keeping a registry
 * of names, and a bridge holding the wrong key says so instead of failing authentication.
 */
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";

export const CHUNK_KEY_BYTES = 32;

export interface ChunkKey {
  /** The first four bytes of a SHA-256 over a label and the key: stored in every chunk header. */
  id: number;
  /** The id as 8 hex digits, as the catalog and messages show it. */
  idHex: string;
  secret: Buffer;
}

/** The key new chunks are encrypted with (if any), and every key chunks may be read with. */
export interface ChunkKeyring {
  current?: ChunkKey;
  byId: ReadonlyMap<number, ChunkKey>;
}

export const NO_KEYS: ChunkKeyring = { byId: new Map() };

/** Where the keys come from; `source` names it in errors (a file path or a variable's name). */
export interface KeySources {
  current?: { source: string; text?: string; file?: string };
  /** Older keys, kept to read chunks written before a rotation. */
  previousFiles: string[];
}

export class ChunkKeyError extends Error {
  override readonly name = "ChunkKeyError";

  constructor(source: string, problem: string) {
    super(`pg-offload encryption key ${source}: ${problem}`);
  }
}

export function chunkKey(secret: Buffer): ChunkKey {
  const digest = createHash("sha256").update("pg-offload chunk key id\0").update(secret).digest();
  const id = digest.readUInt32BE(0);
  return { id, idHex: digest.subarray(0, 4).toString("hex"), secret };
}

/** Parses 64 hex digits or base64 of 32 bytes; anything else is refused, never padded or cut. */
export function parseChunkKey(text: string, source: string): ChunkKey {
  const word = text.trim();
  const secret = /^[0-9a-fA-F]{64}$/.test(word)
    ? Buffer.from(word, "hex")
    : /^[A-Za-z0-9+/]{43}=$/.test(word)
      ? Buffer.from(word, "base64")
      : undefined;
  if (!secret || secret.length !== CHUNK_KEY_BYTES) {
    throw new ChunkKeyError(
      source,
      "must hold 32 random bytes as 64 hex digits or base64 (e.g. from `openssl rand -hex 32`)",
    );
  }
  return chunkKey(secret);
}

export async function loadKeyring(sources: KeySources): Promise<ChunkKeyring> {
  const current = sources.current ? await loadKey(sources.current) : undefined;
  const previous = await Promise.all(
    sources.previousFiles.map((file) => loadKey({ source: file, file })),
  );
  const byId = new Map<number, ChunkKey>();
  for (const key of [...(current ? [current] : []), ...previous]) {
    const known = byId.get(key.id);
    if (known && !known.secret.equals(key.secret)) {
      throw new ChunkKeyError(key.idHex, "two different keys share this id; generate a new key");
    }
    byId.set(key.id, key);
  }
  return { current, byId };
}

async function loadKey(from: { source: string; text?: string; file?: string }): Promise<ChunkKey> {
  if (from.text !== undefined) return parseChunkKey(from.text, from.source);
  const file = from.file as string;
  const info = await stat(file).catch((error: unknown) => {
    throw new ChunkKeyError(file, `cannot be read (${(error as Error).message})`);
  });
  if ((info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8);
    throw new ChunkKeyError(file, `is readable by other users (mode ${mode}); chmod 600 it`);
  }
  return parseChunkKey(await readFile(file, "utf8"), file);
}
