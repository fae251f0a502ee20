import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningBridge } from "../bridge/bridge.ts";
import type { BridgeConfig } from "../bridge/config.ts";
import { readChunkHeader } from "../storage/chunk-format.ts";
import { chunkKey, type KeySources } from "../storage/chunk-keys.ts";
import { startTestBridge, testStoreConfig, waitForJob } from "./support/bridge-harness.ts";
import { expectColdReadFailure, fixture, resultSet } from "./support/fixtures.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

// Values of the awkward fixture that an uncompressed chunk holds verbatim.
const PLAINTEXT_NEEDLES = ["unicode: żółć 日本語", "carriage", "redacted-secret"];

const QUERY = (table: string) => `SELECT * FROM ${table} ORDER BY id`;

describe("chunk encryption, end to end", () => {
  let db: TestDatabase;
  let storeDir: string;
  let keyDir: string;
  let cleanupStore: () => Promise<void>;
  let bridge: RunningBridge | undefined;
  const before = new Map<string, string[]>();
  const secretA = randomBytes(32);
  const secretB = randomBytes(32);
  const keyA = chunkKey(secretA);
  const keyB = chunkKey(secretB);
  let fileA: string;
  let fileB: string;

  async function restartBridge(keys: KeySources, overrides: Partial<BridgeConfig> = {}) {
    await bridge?.stop();
    bridge = await startTestBridge(
      db.url,
      { kind: "local", dir: storeDir },
      {
        // Uncompressed chunks: what is stored would show every value, were it not encrypted.
        overrides: { encryptionKeys: keys, compressionLevel: 0, ...overrides },
      },
    );
  }

  async function offload(table: string): Promise<void> {
    const { rows } = await db.pool.query("SELECT offload.run($1) AS id", [table]);
    const job = await waitForJob(db.pool, Number(rows[0].id));
    expect(job.last_error).toBeNull();
    expect(job.state).toBe("succeeded");
  }

  async function liveChunks(
    table: string,
  ): Promise<{ object_key: string; key_id: string | null }[]> {
    const { rows } = await db.pool.query(
      `SELECT c.object_key, c.key_id FROM offload.chunks c JOIN offload.segments s ON s.id = c.segment_id
        WHERE s.table_id = $1::regclass AND c.retired_at IS NULL AND s.state = 'committed'`,
      [table],
    );
    return rows;
  }

  async function expectUnchanged(table: string): Promise<void> {
    expect(await resultSet(db.pool, QUERY(table))).toEqual(before.get(table));
  }

  beforeAll(async () => {
    db = await createTestDatabase("encryption");
    const store = await testStoreConfig("local");
    if (store.config.kind !== "local") throw new Error("unreachable");
    storeDir = store.config.dir;
    cleanupStore = store.cleanup;
    keyDir = await mkdtemp(join(tmpdir(), "pgo-keys-"));
    fileA = join(keyDir, "key-a");
    fileB = join(keyDir, "key-b");
    await writeFile(fileA, secretA.toString("hex") + "\n", { mode: 0o600 });
    await writeFile(fileB, secretB.toString("base64") + "\n", { mode: 0o600 });
    await db.pool.query(fixture("awkward-table.sql"));
    await db.pool.query("UPDATE awkward SET label = 'redacted-secret ' || id WHERE id % 13 = 0");
    // Copies of awkward: awkward_plain is offloaded without a key, awkward_rotated is the rotation
    // case's own (its chunks move to key B, which no other case expects).
    for (const copy of ["awkward_plain", "awkward_rotated"]) {
      await db.pool.query(`CREATE TABLE ${copy} (LIKE awkward INCLUDING ALL)`);
      await db.pool.query(`INSERT INTO ${copy} SELECT * FROM awkward`);
    }
    await db.pool.query(
      "SELECT offload.define_policy('cold_after_30d', time_column => 'created_at', older_than => interval '30 days')",
    );
    for (const table of ["awkward", "awkward_plain", "awkward_rotated"]) {
      await db.pool.query("SELECT offload.attach_policy($1, 'cold_after_30d')", [table]);
      before.set(table, await resultSet(db.pool, QUERY(table)));
    }
    // Offloaded here, once, for every case: awkward_plain before encryption is turned on, then
    // awkward and awkward_rotated with key A. Each case starts the bridge with the keys it needs.
    await restartBridge({ previousFiles: [] });
    await offload("awkward_plain");
    await restartBridge({ current: { source: fileA, file: fileA }, previousFiles: [] });
    await offload("awkward");
    await offload("awkward_rotated");
  });

  afterAll(async () => {
    await bridge?.stop();
    await db?.drop();
    await cleanupStore?.();
    await rm(keyDir, { recursive: true, force: true });
  });

  it("stores chunks a leaked bucket reveals nothing of, and reads them back exactly", async () => {
    await restartBridge({ current: { source: fileA, file: fileA }, previousFiles: [] });

    const encrypted = await liveChunks("awkward");
    expect(encrypted.length).toBeGreaterThan(1);
    for (const chunk of encrypted) {
      expect(chunk.key_id).toBe(keyA.idHex);
      const stored = await readFile(join(storeDir, chunk.object_key));
      expect(readChunkHeader(stored).keyId).toBe(keyA.id);
      for (const needle of PLAINTEXT_NEEDLES) expect(stored.includes(needle)).toBe(false);
    }
    // The control: the same rows stored without a key show their values.
    const plain = await liveChunks("awkward_plain");
    expect(plain.every((chunk) => chunk.key_id === null)).toBe(true);
    const plainBytes = await Promise.all(plain.map((c) => readFile(join(storeDir, c.object_key))));
    for (const needle of PLAINTEXT_NEEDLES) {
      expect(plainBytes.some((bytes) => bytes.includes(needle))).toBe(true);
    }

    // Chunks written before encryption was turned on read as before, beside encrypted ones.
    await expectUnchanged("awkward");
    await expectUnchanged("awkward_plain");
  });

  it("rotates keys: the old key reads old chunks, rewrite_cold moves every chunk to the new key", async () => {
    await restartBridge({ current: { source: fileB, file: fileB }, previousFiles: [fileA] });
    await expectUnchanged("awkward_rotated");
    expect(new Set((await liveChunks("awkward_rotated")).map((c) => c.key_id))).toEqual(
      new Set([keyA.idHex]),
    );

    const { rows } = await db.pool.query("SELECT offload.rewrite_cold('awkward_rotated') AS id");
    const job = await waitForJob(db.pool, Number(rows[0].id));
    expect(job.last_error).toBeNull();
    const chunks = await liveChunks("awkward_rotated");
    expect(new Set(chunks.map((c) => c.key_id))).toEqual(new Set([keyB.idHex]));
    await expectUnchanged("awkward_rotated");

    // The old key can go: a bridge with only the new one reads the rewritten table (and the
    // unencrypted one).
    await restartBridge({ current: { source: fileB, file: fileB }, previousFiles: [] });
    await expectUnchanged("awkward_rotated");
    await expectUnchanged("awkward_plain");
  });

  it("a bridge without the key fails the query, naming the key it needs", async () => {
    await restartBridge({ previousFiles: [] });
    await expectColdReadFailure(
      db.pool.query("SELECT count(*) FROM awkward"),
      `chunk needs encryption key ${keyA.idHex}`,
    );
    // Unencrypted tables and the hot rows stay readable.
    await expectUnchanged("awkward_plain");
    await db.pool.query("SELECT count(*) FROM ONLY awkward");
  });

  it("refuses to start with a key file other users can read", async () => {
    await bridge?.stop();
    bridge = undefined;
    const loose = join(keyDir, "loose");
    await writeFile(loose, secretA.toString("hex"), { mode: 0o644 });
    await expect(
      startTestBridge(
        db.url,
        { kind: "local", dir: storeDir },
        {
          overrides: {
            encryptionKeys: { current: { source: loose, file: loose }, previousFiles: [] },
          },
        },
      ),
    ).rejects.toThrow(`pg-offload encryption key ${loose}: is readable by other users (mode 644)`);
  });
});
