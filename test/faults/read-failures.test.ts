import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningBridge } from "../../bridge/bridge.ts";
import { objectKey } from "../../storage/object-key.ts";
import {
  offloadNow,
  startTestBridge,
  testStoreConfig,
  type StoreKind,
} from "../support/bridge-harness.ts";
import { expectColdReadFailure, fixture } from "../support/fixtures.ts";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";

describe.each<StoreKind>(["local", "s3"])(
  "a damaged %s store fails the query clearly",
  (storeKind) => {
    let db: TestDatabase;
    let bridge: RunningBridge;
    let cleanupStore: () => Promise<void>;
    let chunks: Array<{ object_key: string; segment_id: string; segment_table: string }>;

    beforeAll(async () => {
      db = await createTestDatabase(`read-failures-${storeKind}`);
      const store = await testStoreConfig(storeKind);
      cleanupStore = store.cleanup;
      bridge = await startTestBridge(db.url, store.config, {
        overrides: { segmentTargetBytes: 512 * 1024, chunkBytes: 64 * 1024 },
      });
      await db.pool.query(fixture("events-table.sql"));
      expect((await offloadNow(db.pool, "events")).state).toBe("succeeded");
      const { rows } = await db.pool.query(
        `SELECT c.object_key, c.segment_id, s.segment_table::text
         FROM offload.chunks c JOIN offload.segments s ON s.id = c.segment_id
        ORDER BY c.segment_id, c.seq`,
      );
      chunks = rows;
      expect(new Set(rows.map((r) => r.segment_id)).size).toBeGreaterThan(2);
    });

    afterAll(async () => {
      await bridge?.stop();
      await db?.drop();
      await cleanupStore?.();
    });

    it("a corrupted chunk: the query fails naming the object, table and segment", async () => {
      const victim = chunks[1]!;
      const key = objectKey(victim.object_key);
      const original = await bridge.store.get(key);
      const damaged = Buffer.from(original);
      damaged[damaged.length - 5]! ^= 0x40;
      await bridge.store.put(key, damaged);
      try {
        const failure = db.pool.query(`SELECT count(*) FROM ${victim.segment_table}`);
        await expectColdReadFailure(failure, `checksum mismatch, object ${victim.object_key}`);
        await expect(db.pool.query("SELECT sum(id) FROM events")).rejects.toThrow();
      } finally {
        await bridge.store.put(key, original);
      }
      await db.pool.query(`SELECT count(*) FROM ${victim.segment_table}`);
    });

    it("a missing chunk: the query fails naming the object", async () => {
      const victim = chunks[chunks.length - 1]!;
      const key = objectKey(victim.object_key);
      const original = await bridge.store.get(key);
      await bridge.store.delete(key);
      try {
        await expectColdReadFailure(
          db.pool.query("SELECT count(*) FROM events"),
          `object missing from the store, object ${victim.object_key}`,
        );
      } finally {
        await bridge.store.put(key, original);
      }
    });

    it("queries that prune every cold segment keep working while the store is damaged", async () => {
      const victim = chunks[0]!;
      const key = objectKey(victim.object_key);
      const original = await bridge.store.get(key);
      await bridge.store.delete(key);
      try {
        const recent = new Date(Date.now() - 86_400_000).toISOString();
        const { rows } = await db.pool.query(
          `SELECT count(*)::int AS n FROM events WHERE created_at > '${recent}'`,
        );
        expect(rows[0].n).toBeGreaterThan(0);
      } finally {
        await bridge.store.put(key, original);
      }
    });
  },
);
