import { parseArgs } from "node:util";
import { startBridge } from "./bridge.ts";
import { openStore } from "../storage/open-store.ts";
import { ConfigError, configFromEnv, type BridgeConfig } from "./config.ts";
import { createClient, createPool } from "./db.ts";
import { rateLimited } from "../storage/rate-limited-store.ts";
import { collectGarbage } from "./garbage-collector.ts";
import { createLogger } from "./log.ts";
import { query } from "./sql-files.ts";
import { installSchema } from "./schema-installer.ts";

const USAGE = `pg-offload <command>

Commands:
  install         install or upgrade the offload schema in the database, then exit
  bridge          run the bridge: install/upgrade the schema, serve reads, run jobs
  verify <table>  re-read every chunk of the table's segments and report per segment
  gc [--dry-run]  remove objects nothing will read again (--dry-run: list them only)

Configuration comes from PGOFFLOAD_* environment variables (see README.md).
Options:
  -h, --help  show this help`;

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: "boolean", short: "h" },
      "dry-run": { type: "boolean" },
    },
  });
  const command = positionals[0];
  if (values.help || !command) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const config = configFromEnv();
  if (command === "install") {
    const client = createClient(config.databaseUrl);
    await client.connect();
    try {
      const applied = await installSchema(client);
      console.log(
        applied.length ? `applied migrations ${applied.join(", ")}` : "schema up to date",
      );
    } finally {
      await client.end();
    }
    return 0;
  }
  if (command === "verify") return verify(config, positionals[1]);
  if (command === "gc") return gc(config, values["dry-run"] ?? false);
  if (command === "bridge") {
    const bridge = await startBridge(config);
    await new Promise<void>((resolve) => {
      let signals = 0;
      const onSignal = () => {
        // First signal: graceful stop. Second: leave now.
        if (++signals > 1) process.exit(1);
        bridge.stop().then(resolve, (error) => {
          console.error(error);
          process.exit(1);
        });
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
    });
    return 0;
  }
  console.error(`pg-offload: unknown command "${command}"\n\n${USAGE}`);
  return 2;
}

async function verify(config: BridgeConfig, table: string | undefined): Promise<number> {
  if (!table) {
    console.error("pg-offload verify: name a table, e.g. pg-offload verify public.events");
    return 2;
  }
  const client = createClient(config.databaseUrl);
  await client.connect();
  try {
    const { rows } = await client.query(query("verify-table"), [table]);
    for (const r of rows) {
      const status = r.ok ? "ok" : `FAILED: ${r.problem}`;
      console.log(
        `segment ${r.segment_id} (${r.segment_table}): ${r.chunks} chunks, ${r.rows_read ?? "?"}/${r.rows_expected} rows, ${status}`,
      );
    }
    const failed = rows.filter((r) => !r.ok).length;
    console.log(`${rows.length} segments checked, ${failed} failed`);
    return failed ? 1 : 0;
  } finally {
    await client.end();
  }
}

async function gc(config: BridgeConfig, dryRun: boolean): Promise<number> {
  const db = createPool(config.databaseUrl, createLogger());
  try {
    const installationId: string = (await db.query(query("installation-id"))).rows[0].id;
    const report = await collectGarbage(
      db,
      rateLimited(openStore(config.store), config.backgroundLimits),
      installationId,
      {
        graceMs: config.gcGraceMs,
        leaseMs: config.jobLeaseMs,
        dryRun,
      },
    );
    for (const c of report.candidates)
      console.log(`${dryRun ? "would remove" : "removed"} ${c.key} (${c.size} bytes): ${c.reason}`);
    console.log(
      `${report.listed} objects listed, ${report.candidates.length} garbage, ${report.deleted} removed` +
        (report.unrecognised
          ? `, ${report.unrecognised} not named by pg-offload (left alone)`
          : ""),
    );
    return 0;
  } finally {
    await db.end();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(error instanceof ConfigError ? error.message : error);
    process.exit(1);
  },
);
