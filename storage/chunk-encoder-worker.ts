/**
 * Runs in a worker thread of storage/chunk-encoder.ts: compresses (and encrypts) one chunk, so
 * that the bridge's event loop keeps serving scans and reading the COPY meanwhile.
 */
import { Piscina } from "piscina";
import { encodeChunk } from "./chunk-format.ts";
import type { EncodeTask } from "./chunk-encoder.ts";

export default function encode(task: EncodeTask): unknown {
  const raw = Buffer.from(task.raw.buffer, task.raw.byteOffset, task.raw.byteLength);
  const stored = encodeChunk(raw, task.options);
  return Piscina.move(new Uint8Array(stored.buffer, stored.byteOffset, stored.byteLength));
}
