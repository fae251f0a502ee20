/**
 * Runs in a worker thread of storage/chunk-encoder.ts: compresses (and encrypts) one chunk, so
 * that the bridge's event loop keeps serving scans and reading the COPY meanwhile.
 */
import { Piscina } from "piscina";
import { encodeChunk } from "./chunk-format.ts";
import { transferable, type EncodeTask } from "./chunk-encoder.ts";

export default function encode(task: EncodeTask): unknown {
  const raw = Buffer.from(task.raw.buffer, task.raw.byteOffset, task.raw.byteLength);
  const stored = encodeChunk(raw, task.options);
  // A small chunk (most compress to well under 4 KiB) is a slice of Node's shared Buffer pool:
  // moved as it is, Node 22+ failed every such offload with DataCloneError.
  return Piscina.move(transferable(stored));
}
