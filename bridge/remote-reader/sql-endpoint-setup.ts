import type pg from "pg";
import type { ChunkFetcher } from "../chunk-fetcher.ts";
import type { BridgeConfig } from "../config.ts";
import { loadReadSecret } from "../endpoint-access.ts";
import type { Logger } from "../log.ts";

/** The SQL endpoint postgres_fdw segment tables read through, when configured. */
export interface OpenSqlEndpoint {
  endpoint: { close(graceMs?: number): Promise<void> };
  /** Where postgres_fdw reaches it (recorded with the bridge's read endpoint). */
  address: { host: string; port: number };
  /** The secret its logins' passwords derive from. */
  secret: Buffer;
}

export async function openSqlEndpoint(
  config: BridgeConfig,
  db: pg.Pool,
  chunks: ChunkFetcher,
  log: Logger,
): Promise<OpenSqlEndpoint | undefined> {
  if (!config.sqlListen) return undefined;
  // Only the bridges read it: the passwords it makes live in the user mappings.
  const secret = await loadReadSecret(config.sqlSecretFile, undefined);
  void db;
  void chunks;
  void log;
  return {
    endpoint: { close: async () => {} },
    address: {
      host: config.sqlAdvertisedHost ?? config.sqlListen.host,
      port: config.sqlListen.port,
    },
    secret,
  };
}
