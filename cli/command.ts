import type pg from "pg";
import type { LoadedConfig } from "../bridge/config-loader.ts";
import { createClient } from "../bridge/db.ts";

/** One `pg-offload <name>` command. */
export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** The command's own --help: usage line, then options. */
  help: string;
  /** Resolves with the exit code. `config` is loaded only when the command asks for it. */
  run(args: string[], config: () => LoadedConfig): Promise<number>;
}

/** A usage error: printed with the command's help, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Runs `work` with a connected client, and closes it whatever happens. */
export async function withClient<T>(
  config: LoadedConfig,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = createClient(config.config.databaseUrl);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
