import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeConfig, loadConfig } from "../../bridge/config-loader.ts";
import { createLogger } from "../../bridge/log.ts";

describe("configuration from a file and the environment", () => {
  let dir: string;
  let file: string;
  const write = (text: string) => writeFile(file, text);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pgo-config-"));
    file = join(dir, "pg-offload.yaml");
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("takes the file over the defaults and the environment over the file", async () => {
    await write("database_url: postgres://file@db/app\ncache_bytes: 1000\nchunk_bytes: 2048\n");
    const { config } = loadConfig({ PGOFFLOAD_CHUNK_BYTES: "4096" }, file);
    expect(config.databaseUrl).toBe("postgres://file@db/app");
    expect(config.cache.diskBytes).toBe(1000);
    expect(config.chunkBytes).toBe(4096);
    expect(config.pollIntervalMs).toBe(5000); // a default
  });

  it("names an unknown setting where it was found, with the nearest real one", async () => {
    await write("database_url: postgres://x@db/app\ncache_byts: 5\n");
    expect(() => loadConfig({}, file)).toThrow(
      `pg-offload configuration: cache_byts in ${file} is not a pg-offload setting (did you mean cache_bytes?)`,
    );
    expect(() =>
      loadConfig({ PGOFFLOAD_DATABASE_URL: "postgres://x@db/app", PGOFFLOAD_POLLMS: "5" }),
    ).toThrow(
      "PGOFFLOAD_POLLMS in the environment is not a pg-offload setting (did you mean PGOFFLOAD_POLL_MS?)",
    );
  });

  it("names a bad value by the name it was given under", async () => {
    await write("database_url: postgres://x@db/app\ncache_bytes: lots\n");
    expect(() => loadConfig({}, file)).toThrow(
      `cache_bytes (in ${file}) must be an integer >= 0, got "lots"`,
    );
    expect(() =>
      loadConfig({ PGOFFLOAD_DATABASE_URL: "postgres://x@db/app", PGOFFLOAD_LOG_FORMAT: "xml" }),
    ).toThrow('PGOFFLOAD_LOG_FORMAT must be one of "auto", "json", "text", got "xml"');
    await write("- a list\n");
    expect(() => loadConfig({}, file)).toThrow("must hold `setting: value` lines");
    expect(() => loadConfig({}, join(dir, "missing.yaml"))).toThrow("cannot be read");
  });

  it("prints the effective configuration with secrets masked and their sources", async () => {
    await write("database_url: postgres://app:hunter2@db/app\nstore: local\n");
    const shown = describeConfig(
      loadConfig({ PGOFFLOAD_ENCRYPTION_KEY: "00".repeat(32), PGOFFLOAD_POLL_MS: "250" }, file),
    );
    expect(shown).not.toContain("hunter2");
    expect(shown).not.toContain("00".repeat(32));
    expect(shown).toContain("databaseUrl: postgres://app:********@db/app");
    expect(shown).toContain(`PGOFFLOAD_DATABASE_URL = ********   from ${file} (database_url)`);
    expect(shown).toContain("PGOFFLOAD_POLL_MS = 250   from environment");
    expect(shown).toContain("pollIntervalMs: 250");
  });
});

describe("log lines", () => {
  it("are JSON objects, or plain text with the fields after the message", () => {
    const lines: string[] = [];
    createLogger({ worker: "w1" }, (l) => lines.push(l), "json").warn("store call failed", {
      key: "a b",
      error: new Error("boom"),
    });
    createLogger({ worker: "w1" }, (l) => lines.push(l), "text")
      .child({ job: 7 })
      .info("job started", { table: "public.events" });
    expect(JSON.parse(lines[0]!)).toMatchObject({
      level: "warn",
      message: "store call failed",
      worker: "w1",
      key: "a b",
      error: { name: "Error", message: "boom" },
    });
    expect(lines[1]).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} {2}INFO {3}job started {2}worker=w1 {2}job=7 {2}table=public\.events$/,
    );
  });
});
