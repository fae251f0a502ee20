import { readFile } from "node:fs/promises";
import type pg from "pg";
import type { ChunkFetcher } from "../chunk-fetcher.ts";
import type { BridgeConfig } from "../config.ts";
import { loadReadSecret } from "../endpoint-access.ts";
import type { Logger } from "../log.ts";
import type { AuthorizedTable, ColdData } from "./cold-data.ts";
import { RemoteSelectRunner, type ScanStats } from "./remote-select.ts";
import { RemoteSegmentCatalog } from "./segment-catalog.ts";
import { SqlEndpoint } from "./sql-endpoint.ts";

/** The SQL endpoint postgres_fdw segment tables read through, when configured. */
export interface OpenSqlEndpoint {
  endpoint: SqlEndpoint;
  /** Where postgres_fdw reaches it (recorded with the bridge's read endpoint). */
  address: { host: string; port: number; tls: boolean };
  /** The secret its logins' passwords derive from. */
  secret: Buffer;
}

/**
 * Opens the SQL endpoint: the catalog says which table a login reads and what a relation name
 * stands for; the runner answers each SELECT from that segment's chunks.
 */
export async function openSqlEndpoint(
  config: BridgeConfig,
  db: pg.Pool,
  chunks: ChunkFetcher,
  log: Logger,
  observer?: (stats: ScanStats) => void,
): Promise<OpenSqlEndpoint | undefined> {
  if (!config.sqlListen) return undefined;
  // Only the bridges read it: the passwords it makes live in the user mappings.
  const secret = await loadReadSecret(config.sqlSecretFile, undefined);
  const catalog = new RemoteSegmentCatalog(db, chunks);
  const runner = new RemoteSelectRunner(db, catalog, catalog, { observer });
  const cold: ColdData = {
    authorize: (user) => catalog.authorize(user),
    select: (table: AuthorizedTable, query, settings, signal) =>
      runner.select(table, query, settings, signal),
    estimate: (table, query) => runner.estimate(table, query),
    relationSize: (table, relation) => runner.relationSize(table, relation),
  };
  const tls = config.sqlTls && {
    cert: await readFile(config.sqlTls.certFile),
    key: await readFile(config.sqlTls.keyFile),
  };
  const endpoint = new SqlEndpoint(cold, log, { secret, tls });
  const bound = await endpoint.listenOnTcp(config.sqlListen.host, config.sqlListen.port);
  const host = config.sqlAdvertisedHost ?? config.sqlListen.host;
  return { endpoint, address: { host, port: bound.port, tls: Boolean(tls) }, secret };
}
