/**
 * `npm run bench:format`: the measurements behind the stored format. For each dataset it times
 * PostgreSQL parsing the same rows as COPY text and as COPY binary through file_fdw, and, on the
 * COPY text, zstd's ratio and speed at several levels and chunk sizes (one thread, as one encoder
 * thread of the bridge runs it). See BENCHMARKS.md for the choice these figures support.
 */
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { constants, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { CopyChunker, type RawChunk } from "../bridge/copy-chunker.ts";
import { startLocalPostgres } from "../sandbox/local-postgres.ts";
import { DATASETS } from "./datasets.ts";
import { timeQuery } from "./measure.ts";

const say = (line = "") => process.stdout.write(line + "\n");
const MiB = 1024 * 1024;
const LEVELS = [1, 3, 6, 9];
const CHUNK_MIBS = [1, 4, 8, 16];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: "string", default: "1000000" },
      runs: { type: "string", default: "3" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    say("npm run bench:format -- [--rows N (default 1000000)] [--runs N (default 3)]");
    return;
  }
  const rows = Number(values.rows);
  const runs = Number(values.runs);
  const server = await startLocalPostgres({ settings: { jit: "off" } });
  const dir = dirname(server.dataDir);
  const db = new pg.Client({ connectionString: server.url() });
  await db.connect();
  try {
    for (const dataset of Object.values(DATASETS)) {
      say(`\n== ${dataset.name}: ${rows.toLocaleString("en")} rows`);
      await db.query(dataset.createSql(rows));
      await db.query(
        (await readFile(new URL("./sql/format-files.sql", import.meta.url), "utf8"))
          .replaceAll("{table}", dataset.name)
          .replaceAll("{dir}", dir),
      );
      await parseCosts(db, dataset.name, (t) => dataset.query("full", t), runs);
      const text = join(dir, `${dataset.name}.text`);
      await compressionFigures(text, join(dir, `${dataset.name}.binary`));
    }
  } finally {
    await db.end();
    await server.stop();
  }
}

async function parseCosts(
  db: pg.Client,
  table: string,
  fullQuery: (table: string) => string,
  runs: number,
): Promise<void> {
  for (const [label, sql] of [
    ["count(*)", (t: string) => `SELECT count(*) FROM ${t}`],
    ["the full-scan query", fullQuery],
  ] as const) {
    const timing = { workers: 0, runs };
    const textMs = await timeQuery(db, sql(`${table}_text`), timing);
    const binaryMs = await timeQuery(db, sql(`${table}_binary`), timing);
    say(
      `parse, ${label.padEnd(19)} text ${textMs.toFixed(0)} ms   binary ${binaryMs.toFixed(0)} ms   ` +
        `binary/text ${(binaryMs / textMs).toFixed(2)}x`,
    );
  }
}

async function compressionFigures(textFile: string, binaryFile: string): Promise<void> {
  const textBytes = (await stat(textFile)).size;
  const binaryBytes = (await stat(binaryFile)).size;
  say(
    `files: COPY text ${(textBytes / MiB).toFixed(1)} MiB, binary ${(binaryBytes / MiB).toFixed(1)} MiB`,
  );
  for (const level of LEVELS) await compressFile(textFile, "text", 8, level);
  for (const chunkMib of CHUNK_MIBS)
    if (chunkMib !== 8) await compressFile(textFile, "text", chunkMib, 3);
  await compressFile(binaryFile, "binary", 8, 3);
}

/** Compresses the file chunk by chunk (cut at row ends, as the bridge cuts), then decompresses. */
async function compressFile(file: string, format: string, chunkMib: number, level: number) {
  let raw = 0;
  let stored = 0;
  let chunks = 0;
  let compressMs = 0;
  let decompressMs = 0;
  const source = createReadStream(file, { highWaterMark: MiB });
  const pieces = format === "text" ? source.pipe(new CopyChunker(chunkMib * MiB)) : source;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const measure = (data: Buffer) => {
    let started = performance.now();
    const packed = zstdCompressSync(data, {
      params: { [constants.ZSTD_c_compressionLevel]: level },
    });
    compressMs += performance.now() - started;
    started = performance.now();
    zstdDecompressSync(packed);
    decompressMs += performance.now() - started;
    raw += data.length;
    stored += packed.length;
    chunks++;
  };
  for await (const piece of pieces) {
    if (format === "text") {
      measure((piece as RawChunk).data);
      continue;
    }
    // Binary rows have no cheap boundary to find: fixed slices estimate the ratio.
    pending.push(piece as Buffer);
    pendingBytes += (piece as Buffer).length;
    if (pendingBytes >= chunkMib * MiB) {
      measure(Buffer.concat(pending));
      pending = [];
      pendingBytes = 0;
    }
  }
  if (pendingBytes > 0) measure(Buffer.concat(pending));
  say(
    `zstd -${level}, ${String(chunkMib).padStart(2)} MiB ${format.padEnd(6)} chunks: ` +
      `ratio ${(raw / stored).toFixed(2)}   compress ${(raw / MiB / (compressMs / 1000)).toFixed(0)} MiB/s   ` +
      `decompress ${(raw / MiB / (decompressMs / 1000)).toFixed(0)} MiB/s   ${chunks} objects`,
  );
}

await main();
