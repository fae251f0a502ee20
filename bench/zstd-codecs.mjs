// Compares the two zstd implementations a chunk can be compressed with, on 8 MiB chunks of a
// COPY text file, at one level: zstd-napi (a native addon built at install) and node:zlib's zstd
// (Node 22.15+). Prints MiB/s to compress and decompress, the compressed size, and whether each
// decompresses what the other compressed (they must: both write standard zstd frames).
//   node bench/zstd-codecs.mjs <copy-file> [level]
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import zlib from "node:zlib";

const [file, levelArg = "3"] = process.argv.slice(2);
const level = Number(levelArg);
const data = readFileSync(file);
const CHUNK = 8 * 1024 * 1024;
const chunks = [];
for (let i = 0; i < data.length; i += CHUNK) chunks.push(data.subarray(i, i + CHUNK));

const codecs = { "node:zlib": nodeZlibCodec() };
try {
  const napi = createRequire(import.meta.url)("zstd-napi");
  codecs["zstd-napi"] = {
    compress: (b) => napi.compress(b, { compressionLevel: level }),
    decompress: (b) => napi.decompress(b),
  };
} catch (error) {
  console.log(`zstd-napi: not loadable here (${error.message.split("\n")[0]})`);
}

function nodeZlibCodec() {
  if (typeof zlib.zstdCompressSync !== "function") return undefined;
  const params = { [zlib.constants.ZSTD_c_compressionLevel]: level };
  return {
    compress: (b) => zlib.zstdCompressSync(b, { params }),
    decompress: (b) => zlib.zstdDecompressSync(b),
  };
}

function time(work, rounds = 3) {
  let best = Infinity;
  let out;
  for (let r = 0; r < rounds; r++) {
    const t = process.hrtime.bigint();
    out = work();
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
  }
  return { seconds: best, out };
}

const mib = data.length / 1048576;
console.log(
  `node ${process.version}, ${file}: ${mib.toFixed(1)} MiB in ${chunks.length} chunks, level ${level}`,
);
const packed = {};
for (const [name, codec] of Object.entries(codecs)) {
  if (!codec) {
    console.log(`${name}: not available in this Node`);
    continue;
  }
  const c = time(() => chunks.map((b) => codec.compress(b)));
  packed[name] = c.out;
  const d = time(() => c.out.map((b) => codec.decompress(b)));
  const size = c.out.reduce((n, b) => n + b.length, 0);
  const same = Buffer.concat(d.out).equals(data);
  console.log(
    `${name.padEnd(10)} compress ${(mib / c.seconds).toFixed(0).padStart(5)} MiB/s  ` +
      `decompress ${(mib / d.seconds).toFixed(0).padStart(5)} MiB/s  ` +
      `ratio ${(data.length / size).toFixed(3)}  round trip ${same ? "exact" : "WRONG"}`,
  );
}
if (packed["zstd-napi"] && codecs["node:zlib"]) {
  const cross = packed["zstd-napi"].map((b) => codecs["node:zlib"].decompress(b));
  const back = packed["node:zlib"].map((b) => codecs["zstd-napi"].decompress(b));
  const ok = Buffer.concat(cross).equals(data) && Buffer.concat(back).equals(data);
  console.log(`cross-reading (each decompresses the other's frames): ${ok ? "exact" : "WRONG"}`);
}
