import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningBridge } from "../../bridge/bridge.ts";
import { offloadNow, startTestBridge, testStoreConfig } from "../support/bridge-harness.ts";
import { fixture } from "../support/fixtures.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";

/** A metric's value from the Prometheus text format, by its name and labels as printed. */
function sample(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  if (!line) throw new Error(`no ${series} in:\n${text}`);
  return Number(line.slice(series.length + 1));
}

describe("metrics and health endpoint", () => {
  let db: TestDatabase;
  let store: Awaited<ReturnType<typeof testStoreConfig>>;
  let bridge: RunningBridge;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase("metrics");
    store = await testStoreConfig("local");
    bridge = await startTestBridge(db.url, store.config, {
      overrides: { metricsListen: { host: "127.0.0.1", port: 0 } },
    });
    base = bridge.metricsUrl!;
    await db.pool.query(fixture("events-table.sql"));
  });

  afterAll(async () => {
    await bridge?.stop();
    await db?.drop();
    await store?.cleanup();
  });

  it("counts what offloads and scans did, and the jobs by state", async () => {
    const job = await offloadNow(db.pool, "events");
    expect(job.state).toBe("succeeded");
    const { rows } = await db.pool.query("SELECT count(*) FROM events");
    expect(rows[0].count).toBe("20000");
    const response = await fetch(`${base}/metrics`);
    expect(response.headers.get("content-type")).toContain("text/plain");
    const text = await response.text();
    const moved = await db.pool.query(
      "SELECT sum(rows) AS rows, count(*) AS segments, sum(stored_bytes) AS stored FROM offload.segments WHERE state = 'committed'",
    );
    expect(sample(text, "pgoffload_offloaded_rows_total")).toBe(Number(moved.rows[0].rows));
    expect(sample(text, "pgoffload_segments_committed_total")).toBe(Number(moved.rows[0].segments));
    expect(sample(text, 'pgoffload_jobs{state="succeeded"}')).toBe(1);
    expect(sample(text, 'pgoffload_jobs{state="failed"}')).toBe(0);
    expect(sample(text, 'pgoffload_store_requests_total{op="put"}')).toBeGreaterThan(0);
    expect(sample(text, 'pgoffload_store_requests_total{op="get"}')).toBeGreaterThan(0);
    expect(sample(text, 'pgoffload_scan_duration_seconds_count{outcome="ok"}')).toBe(
      Number(moved.rows[0].segments),
    );
    expect(sample(text, "pgoffload_served_bytes_total")).toBeGreaterThan(0);
    expect(sample(text, 'pgoffload_cache_lookups_total{result="miss"}')).toBeGreaterThan(0);
  });

  it("answers /healthz with 200 while the database answers, and 404 elsewhere", async () => {
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
    expect((await fetch(`${base}/nothing`)).status).toBe(404);
  });
});
