import type { BenchResult } from "./offload-bench.ts";

const say = (line = "") => process.stdout.write(line + "\n");
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const secs = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);
const ratio = (value: number) => `${value.toFixed(2)}x`;
const rate = (bytes: number, ms: number) =>
  `${(bytes / 1024 / 1024 / (ms / 1000)).toFixed(1)} MB/s`;

/** One block per dataset and store: each figure next to its baseline and the ratio. */
export function printResult(r: BenchResult): void {
  const gb = r.coldHeapBytes / 1024 ** 3;
  say();
  say(
    `== ${r.dataset} on the ${r.store} store, read through ${r.reader}: ${r.rows.toLocaleString("en")} rows, ` +
      `heap + indexes ${mb(r.heapTotalBytes)}; cold: ${r.coldRows.toLocaleString("en")} rows, ` +
      `${mb(r.coldHeapBytes)} of heap, ${r.offload.segments} segments`,
  );
  say(
    `offload            ${secs(r.offload.ms)}  ${rate(r.coldHeapBytes, r.offload.ms)}   ` +
      `baseline COPY | zstd: ${secs(r.baseline.ms)}  ${rate(r.coldHeapBytes, r.baseline.ms)}   ` +
      `throughput ratio ${ratio(r.baseline.ms / r.offload.ms)} (target >= 0.80x)`,
  );
  const withDelete = r.baseline.ms + r.baseline.deleteMs;
  say(
    `  with the DELETE of the moved rows a user would also run: baseline ${secs(withDelete)}, ` +
      `throughput ratio ${ratio(withDelete / r.offload.ms)}`,
  );
  say(
    `  bridge event loop held up during the offload: at worst ${secs(r.offload.loopDelayMaxMs)}, ` +
      `p99 ${secs(r.offload.loopDelayP99Ms)} (scans it serves wait as long)`,
  );
  say(
    `stored bytes       ${mb(r.offload.storedBytes)} = ${ratio(r.offload.storedBytes / r.heapTotalBytes)} ` +
      `of heap + indexes (target <= 0.25x); baseline file ${mb(r.baseline.bytes)}`,
  );
  for (const s of r.scans) {
    say(
      `full scan, ${s.workers} workers  cold ${secs(s.coldMs)}   cached ${secs(s.cachedMs)}   hot ${secs(s.hotMs)} ` +
        `(cold/hot ${ratio(s.coldMs / s.hotMs)}, moonshot <= 3x)   parse limit ${secs(s.parseLimitMs)} ` +
        `(cold/limit ${ratio(s.coldMs / s.parseLimitMs)}, target <= ${r.store === "local" ? "1.15" : "1.5"}x)` +
        `${s.sameAnswer ? "" : "   ANSWERS DIFFER"}`,
    );
  }
  const labels = { day: "one cold day", point: "one row by id", join100: "100 ids by a join" };
  for (const d of r.selective) {
    say(
      `${labels[d.query].padEnd(18)} cold ${secs(d.coldMs)}   cached ${secs(d.cachedMs)}   hot ${secs(d.hotMs)} ` +
        `(cached/hot ${ratio(d.cachedMs / d.hotMs)})   segments scanned ${d.segmentsScanned} of ${r.offload.segments}, ` +
        `${mb(d.bytesFetched)} fetched per query${d.sameAnswer ? "" : "   ANSWERS DIFFER"}`,
    );
  }
  const scan = r.scans[0];
  say(
    `store requests     ${(r.offload.puts / gb).toFixed(0)} PUTs per GB of heap offloaded (${r.offload.puts} in all); ` +
      `${scan ? scan.getsPerScan.toFixed(0) : "-"} GETs per full scan`,
  );
}
