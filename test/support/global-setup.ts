import type { TestProject } from "vitest/node";
import pg from "pg";
import { installSchema } from "../../bridge/schema-installer.ts";
import { startLocalPostgres } from "../../sandbox/local-postgres.ts";
import { startS3Server } from "../../sandbox/s3-server.ts";
import { TEMPLATE_DATABASE } from "./test-database.ts";

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
  const server = await startLocalPostgres();
  const s3 = await startS3Server();
  const admin = new pg.Client({ connectionString: server.url() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${TEMPLATE_DATABASE}`);
  await admin.end();
  const template = new pg.Client({ connectionString: server.url(TEMPLATE_DATABASE) });
  await template.connect();
  await installSchema(template);
  await template.end();

  const { host, port, user, binDir, dataDir } = server;
  project.provide("postgres", { host, port, user, binDir, dataDir });
  project.provide("s3", { endpoint: s3.endpoint, bucket: s3.bucket });
  return async () => {
    await s3.stop();
    await server.stop();
  };
}
