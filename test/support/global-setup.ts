import { readdirSync } from "node:fs";
import { rm } from "node:fs/promises";
import { relative } from "node:path";
import type { TestProject } from "vitest/node";
import pg from "pg";
import { installSchema } from "../../bridge/schema-installer.ts";
import { startLocalPostgres } from "../../sandbox/local-postgres.ts";
import { SandboxError } from "../../sandbox/sandbox-error.ts";
import { startS3Server } from "../../sandbox/s3-server.ts";
import { FAILED_DB_DIR, TEMPLATE_DATABASE } from "./test-database.ts";

declare module "vitest" {
  export interface ProvidedContext {
    postgres: { host: string; port: number; user: string; binDir: string; dataDir: string };
    s3: { endpoint: string; bucket: string };
  }
}

/**
 * Starts one PostgreSQL server and one S3 protocol server for the whole run, and a template
 * database with the offload schema installed that each test file clones.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Dumps of an earlier run's failed tests would read as this run's.
  await rm(FAILED_DB_DIR, { recursive: true, force: true });
  const server = await startLocalPostgres().catch(sayWhyNoServer);
  const s3 = await startS3Server().catch(async (error: unknown) => {
    await server.stop();
    throw error;
  });
  const stopAll = async () => {
    await s3.stop();
    await server.stop();
    reportKeptDatabases();
  };
  try {
    await createTemplate(server.url(), server.url(TEMPLATE_DATABASE));
  } catch (error) {
    // A migration that fails to install ends the run: without this its servers outlived it.
    await stopAll();
    throw error;
  }

  const { host, port, user, binDir, dataDir } = server;
  project.provide("postgres", { host, port, user, binDir, dataDir });
  project.provide("s3", { endpoint: s3.endpoint, bucket: s3.bucket });
  return stopAll;
}

/** The machine lacks what the server needs: its sentence, without a stack trace to read past. */
function sayWhyNoServer(error: unknown): never {
  if (error instanceof SandboxError) error.stack = `pg-offload tests: ${error.message}`;
  throw error;
}

async function createTemplate(serverUrl: string, templateUrl: string): Promise<void> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${TEMPLATE_DATABASE}`);
  await admin.end();
  const template = new pg.Client({ connectionString: templateUrl });
  await template.connect();
  try {
    await installSchema(template);
  } finally {
    await template.end();
  }
}

/** One line at the end of the run, after the per-file reports that scrolled by. */
function reportKeptDatabases(): void {
  let dumps: string[];
  try {
    dumps = readdirSync(FAILED_DB_DIR, { recursive: true, encoding: "utf8" }).filter((f) =>
      f.endsWith(".sql"),
    );
  } catch {
    return;
  }
  if (dumps.length === 0) return;
  console.warn(
    `${dumps.length} failed test database(s) dumped under ${relative(process.cwd(), FAILED_DB_DIR)}/ ` +
      "(the test server itself is gone): restore one with createdb <name> && psql -d <name> -f <dump>",
  );
}
