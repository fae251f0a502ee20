/**
 * The bridge's Prometheus metrics. Components report through the small interfaces they are given
 * (store calls, cache lookups, scans served, segments committed); jobs by state are read from
 * offload.jobs at each scrape, so every bridge of a database reports the same queue.
 */
import type pg from "pg";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { CacheObserver } from "../storage/chunk-cache.ts";
import type { StoreObserver } from "../storage/observed-store.ts";
import { query } from "./sql-files.ts";

/** What ObservedStore reports, and the retries the RetryingStore reports. */
export interface StoreCallObserver extends StoreObserver {
  retried(op: string): void;
}

export interface ScanObserver {
  served(outcome: "ok" | "error" | "cancelled", seconds: number, bytes: number): void;
}

export interface OffloadObserver {
  segmentCommitted(rows: number, rawBytes: number, storedBytes: number): void;
}

export class BridgeMetrics {
  readonly registry = new Registry();
  readonly store: StoreCallObserver;
  readonly cache: CacheObserver;
  readonly scans: ScanObserver;
  readonly offloads: OffloadObserver;

  constructor(db: pg.Pool) {
    const registry = this.registry;
    collectDefaultMetrics({ register: registry, prefix: "pgoffload_process_" });
    new Gauge({
      name: "pgoffload_jobs",
      help: "Jobs in offload.jobs, by state",
      labelNames: ["state"],
      registers: [registry],
      async collect() {
        const { rows } = await db.query(query("jobs-by-state"));
        this.reset();
        for (const row of rows) this.set({ state: row.state }, Number(row.jobs));
      },
    });
    const rows = counter(registry, "pgoffload_offloaded_rows_total", "Rows moved to the store");
    const bytes = counter(
      registry,
      "pgoffload_offloaded_bytes_total",
      "Bytes offloaded: raw COPY text and as stored",
      ["form"],
    );
    const segments = counter(
      registry,
      "pgoffload_segments_committed_total",
      "Segments committed by offloads",
    );
    this.offloads = {
      segmentCommitted(r, raw, stored) {
        segments.inc();
        rows.inc(r);
        bytes.inc({ form: "raw" }, raw);
        bytes.inc({ form: "stored" }, stored);
      },
    };
    const calls = counter(registry, "pgoffload_store_requests_total", "Store calls, by operation", [
      "op",
    ]);
    const errors = counter(
      registry,
      "pgoffload_store_errors_total",
      "Store calls failed after retries, by operation and kind",
      ["op", "kind"],
    );
    const retries = counter(
      registry,
      "pgoffload_store_retries_total",
      "Store calls retried, by operation",
      ["op"],
    );
    this.store = {
      call: (op) => calls.inc({ op }),
      failed: (op, kind) => errors.inc({ op, kind }),
      retried: (op) => retries.inc({ op }),
    };
    const lookups = counter(
      registry,
      "pgoffload_cache_lookups_total",
      "Chunk cache lookups, by result",
      ["result"],
    );
    this.cache = {
      hit: (tier) => lookups.inc({ result: `${tier}_hit` }),
      miss: () => lookups.inc({ result: "miss" }),
    };
    const served = counter(
      registry,
      "pgoffload_served_bytes_total",
      "COPY text served to segment scans",
    );
    const durations = new Histogram({
      name: "pgoffload_scan_duration_seconds",
      help: "Segment scans served by the read endpoint, by outcome",
      labelNames: ["outcome"],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300],
      registers: [registry],
    });
    this.scans = {
      served(outcome, seconds, n) {
        durations.observe({ outcome }, seconds);
        served.inc(n);
      },
    };
  }
}

function counter(registry: Registry, name: string, help: string, labelNames: string[] = []) {
  return new Counter({ name, help, labelNames, registers: [registry] });
}
