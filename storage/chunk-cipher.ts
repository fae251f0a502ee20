/**
 * AES-256-GCM over a chunk's payload. The sealed form is nonce (12 bytes), ciphertext, tag (16
 * bytes). A random nonce per chunk is safe for about 2^32 chunks per key (NIST SP 800-38D), which
 * at the default chunk size is petabytes: rotate keys long before. The associated data binds the
 * ciphertext to its header and to its object key, so a stored chunk cannot be altered, given
 * another header, or swapped with another chunk without the read failing.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import type { ChunkKey } from "./chunk-keys.ts";

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const SEAL_OVERHEAD_BYTES = NONCE_BYTES + TAG_BYTES;

export function sealPayload(plain: Buffer, key: ChunkKey, associated: Buffer): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key.secret, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(associated);
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

/** Returns the plaintext, or undefined when the sealed bytes or associated data were altered. */
export function openPayload(sealed: Buffer, key: ChunkKey, associated: Buffer): Buffer | undefined {
  if (sealed.length < SEAL_OVERHEAD_BYTES) return undefined;
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const decipher = createDecipheriv("aes-256-gcm", key.secret, nonce, {
    authTagLength: TAG_BYTES,
  });
  decipher.setAAD(associated);
  decipher.setAuthTag(tag);
  const body = decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES));
  try {
    return Buffer.concat([body, decipher.final()]);
  } catch {
    // final() throws only "Unsupported state or unable to authenticate data": nothing to keep.
    return undefined;
  }
}
