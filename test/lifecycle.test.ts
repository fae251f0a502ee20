import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RunningBridge } from "../bridge/bridge.ts";
import { collectGarbage } from "../bridge/garbage-collector.ts";
import { objectKey } from "../storage/object-key.ts";
import {
  offloadNow,
  startTestBridge,
  testStoreConfig,
  waitForJob,
  type StoreKind,
} from "./support/bridge-harness.ts";
import { duplicatedIds, tableDigest } from "./support/digest.ts";
import { fixture, segmentTables } from "./support/fixtures.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

async function storedKeys(bridge: RunningBridge): Promise<Set<string>> {
  const keys = new Set<string>();
  for await (const o of bridge.store.list("")) keys.add(o.key);
  return keys;
}

async function installationId(db: TestDatabase): Promise<string> {
  return (await db.pool.query("SELECT id FROM offload.installation WHERE superseded_at IS NULL"))
    .rows[0].id;
}

describe.each<StoreKind>(["local", "s3"])(
  "the lifecycle of offloaded data on the %s store",
  (kind) => {
    let db: TestDatabase;
    let bridge: RunningBridge;
    let cleanupStore: () => Promise<void>;
    let digest: string;

    // Each case its own database and store with events offloaded: the cases rewrite, load back,
    // collect garbage and drop the table, which no other case may see.
    beforeEach(async () => {
      db = await createTestDatabase(`lifecycle-${kind}`);
      const store = await testStoreConfig(kind);
      cleanupStore = store.cleanup;
      bridge = await startTestBridge(db.url, store.config, {
        overrides: { segmentTargetBytes: 256 * 1024, chunkBytes: 32 * 1024 },
      });
      await db.pool.query(fixture("events-table.sql"));
      digest = await tableDigest(db.pool, "events");
      expect((await offloadNow(db.pool, "events")).state).toBe("succeeded");
    });

    afterEach(async () => {
      await bridge?.stop();
      await db?.drop();
      await cleanupStore?.();
    });

    it("describe lists every chunk with its key, epoch, rows and sizes, as stored", async () => {
      const { rows } = await db.pool.query("SELECT * FROM offload.describe('events')");
      expect(rows.length).toBeGreaterThan(5);
      const keys = await storedKeys(bridge);
      for (const r of rows) {
        expect(keys.has(r.object_key)).toBe(true);
        expect(r).toMatchObject({ state: "committed", epoch: 1, current_epoch: true });
        expect(Number(r.stored_bytes)).toBeGreaterThan(0);
      }
      const cold = await db.pool.query(
        "SELECT sum(rows)::int AS n FROM offload.describe('events')",
      );
      const hot = await db.pool.query("SELECT count(*)::int AS n FROM ONLY events");
      expect(cold.rows[0].n + hot.rows[0].n).toBe(20000);
    });

    it("verify re-reads every segment and names the damaged one", async () => {
      const clean = await db.pool.query("SELECT * FROM offload.verify('events')");
      expect(clean.rows.length).toBeGreaterThan(1);
      expect(clean.rows.every((r) => r.ok && r.rows_read === r.rows_expected)).toBe(true);

      const victim = (
        await db.pool.query("SELECT * FROM offload.describe('events') LIMIT 1 OFFSET 2")
      ).rows[0];
      const key = objectKey(victim.object_key);
      const original = await bridge.store.get(key);
      const damaged = Buffer.from(original);
      damaged[40]! ^= 0xff;
      await bridge.store.put(key, damaged);
      try {
        const { rows } = await db.pool.query("SELECT * FROM offload.verify('events')");
        const bad = rows.filter((r) => !r.ok);
        expect(bad).toHaveLength(1);
        expect(bad[0]).toMatchObject({ segment_id: victim.segment_id });
        expect(bad[0].problem).toContain(victim.object_key);
      } finally {
        await bridge.store.put(key, original);
      }
    });

    it("delete_cold removes matching cold rows, rewriting only the segments that hold them", async () => {
      const before = await db.pool.query(
        "SELECT id, epoch FROM offload.segments WHERE state = 'committed' ORDER BY id",
      );
      const target = await db.pool.query(
        "SELECT min(e.id)::int AS lo FROM events e WHERE e.tableoid = (SELECT segment_table FROM offload.segments WHERE id = $1)",
        [before.rows[1].id],
      );
      const lo = target.rows[0].lo;
      const expected = await tableDigest(
        db.pool,
        `(SELECT * FROM events WHERE id NOT BETWEEN ${lo} AND ${lo + 9})`,
      );
      const jobId = (
        await db.pool.query(
          `SELECT offload.delete_cold('events', 'id BETWEEN ${lo} AND ${lo + 9}') AS id`,
        )
      ).rows[0].id;
      const job = await waitForJob(db.pool, Number(jobId));
      expect(job).toMatchObject({ state: "succeeded", rows_done: "10" });
      expect(await tableDigest(db.pool, "events")).toBe(expected);
      const after = await db.pool.query(
        "SELECT id, epoch FROM offload.segments WHERE state = 'committed' ORDER BY id",
      );
      expect(
        after.rows.filter((r, i) => r.epoch !== before.rows[i].epoch).map((r) => r.id),
      ).toEqual([before.rows[1].id]);
      const verify = await db.pool.query("SELECT bool_and(ok) AS ok FROM offload.verify('events')");
      expect(verify.rows[0].ok).toBe(true);
    });

    it("update_cold sets columns in matching cold rows only", async () => {
      const jobId = (
        await db.pool.query(
          `SELECT offload.update_cold('events', '{"kind": "''redacted''", "payload": "NULL"}', 'id % 1000 = 7') AS id`,
        )
      ).rows[0].id;
      expect(await waitForJob(db.pool, Number(jobId))).toMatchObject({ state: "succeeded" });
      const { rows } = await db.pool.query(
        `SELECT count(*) FILTER (WHERE kind = 'redacted' AND payload IS NULL)::int AS changed,
              count(*) FILTER (WHERE kind = 'redacted')::int AS any_redacted,
              count(*) FILTER (WHERE id % 1000 = 7 AND tableoid = 'events'::regclass)::int AS hot_matching
         FROM events`,
      );
      const coldMatching = 20 - rows[0].hot_matching;
      expect(rows[0]).toMatchObject({ changed: coldMatching, any_redacted: coldMatching });
    });

    it("rejects bad rewrites when they are asked for", async () => {
      await expect(
        db.pool.query("SELECT offload.delete_cold('events', 'no_such_column = 1')"),
      ).rejects.toMatchObject({
        code: "42703",
      });
      await expect(
        db.pool.query("SELECT offload.delete_cold('events', 'id +')"),
      ).rejects.toMatchObject({
        code: "42601",
      });
      await expect(
        db.pool.query(`SELECT offload.update_cold('events', '{"created_at": "now()"}', 'true')`),
      ).rejects.toMatchObject({
        code: "0A000",
        message: expect.stringMatching(/places rows in segments/),
      });
      await expect(
        db.pool.query(`SELECT offload.update_cold('events', '{"nope": "1"}', 'true')`),
      ).rejects.toMatchObject({ code: "42703" });
      // One expression each, on the columns by name: not two statements, not the table's name.
      await expect(
        db.pool.query("SELECT offload.delete_cold('events', 'true); SELECT 1; SELECT (true')"),
      ).rejects.toMatchObject({
        code: "42601",
        message: expect.stringMatching(/one SQL expression/),
      });
      await expect(
        db.pool.query(`SELECT offload.update_cold('events', '{"kind": "1); SELECT (1"}', 'true')`),
      ).rejects.toMatchObject({ severity: "ERROR" });
      await expect(
        db.pool.query("SELECT offload.delete_cold('events', 'events.id = 1')"),
      ).rejects.toMatchObject({ code: "42P01" });
      const client = await db.pool.connect();
      try {
        await client.query("CREATE ROLE lifecycle_stranger_" + kind);
        await client.query("SET ROLE lifecycle_stranger_" + kind);
        await expect(
          client.query("SELECT offload.delete_cold('events', 'true')"),
        ).rejects.toMatchObject({ code: "42501" });
        await expect(client.query("SELECT offload.load_back('events')")).rejects.toMatchObject({
          code: "42501",
        });
        // An owner who may not create temporary objects: refused at the call, saying why.
        await client.query("RESET ROLE");
        await client.query(`ALTER TABLE events OWNER TO lifecycle_stranger_${kind}`);
        await client.query(`REVOKE TEMPORARY ON DATABASE ${db.name} FROM PUBLIC`);
        await client.query("SET ROLE lifecycle_stranger_" + kind);
        await expect(
          client.query("SELECT offload.delete_cold('events', 'true')"),
        ).rejects.toMatchObject({ code: "42501", message: expect.stringMatching(/TEMPORARY/) });
      } finally {
        await client.query("RESET ROLE");
        await client.query(`GRANT TEMPORARY ON DATABASE ${db.name} TO PUBLIC`);
        await client.query("ALTER TABLE events OWNER TO CURRENT_USER");
        client.release();
      }
    });

    it("load_back of a key range brings those segments back hot and retires them", async () => {
      const segs = await db.pool.query(
        "SELECT id, range_lo, range_hi FROM offload.segments WHERE state = 'committed' ORDER BY id",
      );
      const first = segs.rows[0];
      const loaded = await db.pool.query("SELECT offload.load_back('events', $1, $2) AS n", [
        first.range_lo,
        first.range_hi,
      ]);
      expect(Number(loaded.rows[0].n)).toBeGreaterThan(0);
      const { rows } = await db.pool.query(
        "SELECT state, retired_at IS NOT NULL AS retired FROM offload.segments WHERE id = $1",
        [first.id],
      );
      expect(rows[0]).toEqual({ state: "retired", retired: true });
      expect((await segmentTables(db.pool, "events")).length).toBe(segs.rows.length - 1);
      expect(await tableDigest(db.pool, "events")).toBe(digest);
      expect(await duplicatedIds(db.pool, "events")).toBe(0);
    });

    it("garbage collection removes orphans, old epochs and retired segments, never a live object", async () => {
      // Garbage of each kind a catalog knows: an epoch replaced by a rewrite, a segment loaded back.
      const segs = await db.pool.query(
        "SELECT id, range_lo, range_hi FROM offload.segments WHERE state = 'committed' ORDER BY id",
      );
      const victim = await db.pool.query(
        "SELECT min(e.id)::int AS id FROM events e WHERE e.tableoid = (SELECT segment_table FROM offload.segments WHERE id = $1)",
        [segs.rows[1].id],
      );
      const rewrite = await db.pool.query(
        `SELECT offload.delete_cold('events', 'id = ${victim.rows[0].id}') AS id`,
      );
      expect((await waitForJob(db.pool, Number(rewrite.rows[0].id))).state).toBe("succeeded");
      await db.pool.query("SELECT offload.load_back('events', $1, $2)", [
        segs.rows[0].range_lo,
        segs.rows[0].range_hi,
      ]);
      const digest = await tableDigest(db.pool, "events");
      const install = await installationId(db);
      // An orphan no catalog row knows, and an object pg-offload did not name.
      await bridge.store.put(
        objectKey(`${install}/s999999-deadbeef/e1/000001.chunk`),
        Buffer.from("orphan"),
      );
      await bridge.store.put(objectKey(`${install}/notes.txt`), Buffer.from("someone else's"));
      // An attempt whose job is gone (its objects are garbage) and one whose job is alive (kept).
      const pendingSegment = async (jobId: number | null) =>
        Number(
          (
            await db.pool.query(
              "SELECT offload.begin_segment($1, 'events'::regclass::oid::regclass, '2000-01-01', '2000-01-02', 'test') AS id",
              [jobId],
            )
          ).rows[0].id,
        );
      const dead = await pendingSegment(null);
      const deadKey = `${install}/s${dead}-0badc0de/e1/000001.chunk`;
      await bridge.store.put(objectKey(deadKey), Buffer.from("half an attempt"));
      const liveKeys = (
        await db.pool.query(
          "SELECT c.object_key FROM offload.chunks c JOIN offload.segments s ON s.id = c.segment_id AND c.epoch = s.epoch WHERE s.state = 'committed'",
        )
      ).rows.map((r) => r.object_key as string);

      const dry = await collectGarbage(db.pool, bridge.store, install, {
        graceMs: 0,
        leaseMs: 60_000,
        dryRun: true,
      });
      const reasons = new Set(dry.candidates.map((c) => c.reason));
      expect(reasons).toContain("no catalog row knows its segment");
      expect(dry.candidates.find((c) => c.key === deadKey)?.reason).toBe(
        "abandoned offload attempt",
      );
      expect([...reasons].join()).toMatch(/replaced by a rewrite/);
      expect([...reasons].join()).toMatch(/loaded back/);
      expect(dry.deleted).toBe(0);
      expect(dry.unrecognised).toBe(1);
      for (const c of dry.candidates) expect(liveKeys).not.toContain(c.key);
      const keysBefore = await storedKeys(bridge);
      for (const c of dry.candidates) expect(keysBefore.has(c.key)).toBe(true);

      // Within the grace period nothing retired goes; only objects nobody knows.
      const patient = await collectGarbage(db.pool, bridge.store, install, {
        graceMs: 3_600_000,
        leaseMs: 60_000,
        dryRun: true,
      });
      expect(patient.candidates.map((c) => c.reason)).toEqual(["no catalog row knows its segment"]);

      const real = await collectGarbage(db.pool, bridge.store, install, {
        graceMs: 0,
        leaseMs: 60_000,
        dryRun: false,
      });
      expect(real.deleted).toBe(dry.candidates.length);
      const keysAfter = await storedKeys(bridge);
      for (const key of liveKeys) expect(keysAfter.has(key)).toBe(true);
      for (const c of dry.candidates) expect(keysAfter.has(c.key)).toBe(false);
      expect(keysAfter.has(`${install}/notes.txt`)).toBe(true);

      // An upload of a running job is kept; once the job has failed, it is garbage.
      const liveJob = Number(
        (
          await db.pool.query(
            "INSERT INTO offload.jobs (table_id, state, heartbeat_at, locked_by) VALUES ('events', 'running', now(), 'elsewhere') RETURNING id",
          )
        ).rows[0].id,
      );
      const aliveKey = `${install}/s${await pendingSegment(liveJob)}-600dc0de/e1/000001.chunk`;
      await bridge.store.put(objectKey(aliveKey), Buffer.from("an upload in progress"));
      const gcNow = () =>
        collectGarbage(db.pool, bridge.store, install, {
          graceMs: 0,
          leaseMs: 60_000,
          dryRun: false,
        });
      await gcNow();
      expect((await storedKeys(bridge)).has(aliveKey)).toBe(true);
      await db.pool.query("UPDATE offload.jobs SET state = 'failed' WHERE id = $1", [liveJob]);
      await gcNow();
      expect((await storedKeys(bridge)).has(aliveKey)).toBe(false);
      expect(
        (await db.pool.query("SELECT bool_and(ok) AS ok FROM offload.verify('events')")).rows[0].ok,
      ).toBe(true);
      expect(await tableDigest(db.pool, "events")).toBe(digest);
      const again = await collectGarbage(db.pool, bridge.store, install, {
        graceMs: 0,
        leaseMs: 60_000,
        dryRun: true,
      });
      expect(again.candidates).toEqual([]);
    });

    it("load_back of everything leaves no segment, and DROP TABLE leaves no stored data", async () => {
      await db.pool.query("SELECT offload.load_back('events')");
      expect(await segmentTables(db.pool, "events")).toEqual([]);
      expect(await tableDigest(db.pool, "events")).toBe(digest);

      expect((await offloadNow(db.pool, "events")).state).toBe("succeeded");
      // Segment tables are inheritance children: PostgreSQL asks for CASCADE, as for any child.
      await expect(db.pool.query("DROP TABLE events")).rejects.toThrow(
        /other objects depend on it/,
      );
      await db.pool.query("DROP TABLE events CASCADE");
      const { rows } = await db.pool.query("SELECT DISTINCT state FROM offload.segments");
      expect(rows.map((r) => r.state)).toEqual(["retired"]);
      const install = await installationId(db);
      await collectGarbage(db.pool, bridge.store, install, {
        graceMs: 0,
        leaseMs: 60_000,
        dryRun: false,
      });
      const left = [...(await storedKeys(bridge))].filter((k) => k.startsWith(`${install}/s`));
      expect(left).toEqual([]);
      expect(
        (await db.pool.query("SELECT count(*)::int AS n FROM offload.segments")).rows[0].n,
      ).toBe(0);
    });
  },
);
