import { parseArgs } from "node:util";
import { startBridge } from "./bridge.ts";
import { ConfigError, configFromEnv } from "./config.ts";
import { createClient } from "./db.ts";
import { installSchema } from "./schema-installer.ts";

const USAGE = `pg-offload <command>

Commands:
  install   install or upgrade the offload schema in the database, then exit
  bridge    run the bridge: install/upgrade the schema, serve reads, run offload jobs

Configuration comes from PGOFFLOAD_* environment variables (see README.md).
Options:
  -h, --help  show this help`;

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { help: { type: "boolean", short: "h" } },
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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(error instanceof ConfigError ? error.message : error);
    process.exit(1);
  },
);
