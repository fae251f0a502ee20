import { pgDumpPath } from "./support/server-tools.ts";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { waitForJob } from "./support/bridge-harness.ts";
import { spawnBridge, type BridgeProcess } from "./support/bridge-process.ts";
import { tableDigest } from "./support/digest.ts";
import { fixture } from "./support/fixtures.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

const run = promisify(execFile);

// s3rver accepts only its fixed key pair; what matters here is where the bridge finds it.
const ACCESS_KEY = "S3RVER";
const SECRET_KEY = "S3RVER";

describe("store credentials", () => {
  let db: TestDatabase;
  let bridge: BridgeProcess;
  let dir: string;

  beforeAll(async () => {
    db = await createTestDatabase("credentials");
    dir = await mkdtemp(join(tmpdir(), "pgo-credentials-"));
    const credentials = join(dir, "credentials");
    await writeFile(
      credentials,
      `[offload]\naws_access_key_id = ${ACCESS_KEY}\naws_secret_access_key = ${SECRET_KEY}\n`,
      { mode: 0o600 },
    );
    const { endpoint, bucket } = inject("s3");
    bridge = spawnBridge({
      PGOFFLOAD_DATABASE_URL: db.url,
      PGOFFLOAD_STORE: "s3",
      PGOFFLOAD_S3_BUCKET: bucket,
      PGOFFLOAD_S3_PREFIX: `credentials-${Date.now()}`,
      PGOFFLOAD_S3_ENDPOINT: endpoint,
      PGOFFLOAD_S3_FORCE_PATH_STYLE: "true",
      PGOFFLOAD_SCHEDULE_MS: "0",
      PGOFFLOAD_POLL_MS: "200",
      // Nothing in the environment: the SDK's default chain finds the shared credentials file.
      AWS_ACCESS_KEY_ID: "",
      AWS_SECRET_ACCESS_KEY: "",
      AWS_SHARED_CREDENTIALS_FILE: credentials,
      AWS_CONFIG_FILE: join(dir, "no-config"),
      AWS_PROFILE: "offload",
    });
    await db.pool.query(fixture("events-table.sql"));
  });

  afterAll(async () => {
    await bridge?.kill("SIGTERM");
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it("come from a credentials file through the AWS default chain, and never reach the catalog", async () => {
    const digest = await tableDigest(db.pool, "events");
    const { rows } = await db.pool.query("SELECT offload.run('events') AS id");
    const job = await waitForJob(db.pool, Number(rows[0].id));
    expect(job.state, `${job.last_error}\n${bridge.output()}`).toBe("succeeded");
    expect(await tableDigest(db.pool, "events")).toBe(digest);

    // A dump of the whole database (catalog, foreign-table options, every row) holds no key.
    const pgDump = pgDumpPath(
      "store credentials: the check that a dump holds no key",
      "same-or-older-server",
    );
    if (!pgDump) return;
    const { host, port, user } = inject("postgres");
    const dumped = await run(
      pgDump,
      ["-h", host, "-p", String(port), "-U", user, db.url.split("/").pop()!.split("?")[0]!],
      { maxBuffer: 256 * 1024 * 1024 },
    );
    expect(dumped.stdout).toContain("pg_offload_reader");
    expect(dumped.stdout).not.toContain(SECRET_KEY);
  });
});
