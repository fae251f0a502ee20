import type pg from "pg";
import type { ChunkCache } from "../storage/chunk-cache.ts";
import type { ChunkKeyring } from "../storage/chunk-keys.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import type { BridgeConfig } from "./config.ts";
import {
  clearStaleSocket,
  databaseOsUser,
  loadReadSecret,
  preparePrivateDirectory,
  restrictSocket,
} from "./endpoint-access.ts";
import type { Logger } from "./log.ts";
import type { ScanObserver } from "./metrics.ts";
import { ReadEndpoint } from "./read-endpoint.ts";
import type { ReaderTarget } from "./reader-program.ts";
import { dirname } from "node:path";

/**
 * Opens the read endpoint as configured, reachable by the database server's OS user only, and
 * says where segment readers find it. None for a database without file_fdw's server (installed
 * by a role that is not a superuser: the managed profile), whose segments read through
 * postgres_fdw only.
 */
export async function openReadEndpoint(
  config: BridgeConfig,
  db: pg.Pool,
  store: ObjectStore,
  keys: ChunkKeyring,
  cache: ChunkCache,
  log: Logger,
  observer?: ScanObserver,
): Promise<{ endpoint?: ReadEndpoint; target: ReaderTarget }> {
  if (!(await hasFileReader(db))) return { target: { kind: "none", worker: config.workerId } };
  const owner = await databaseOsUser(db);
  if (config.readListen === "unix") {
    await preparePrivateDirectory(dirname(config.readSocket), owner);
    await clearStaleSocket(config.readSocket);
    const endpoint = new ReadEndpoint(db, store, log, {
      keys,
      cache,
      observer,
      readAheadChunks: config.readAheadChunks,
    });
    await endpoint.listenOnSocket(config.readSocket);
    if (owner) await restrictSocket(config.readSocket, owner);
    return { endpoint, target: { kind: "unix", socketPath: config.readSocket } };
  }
  const secret = await loadReadSecret(config.readSecretFile, owner);
  const endpoint = new ReadEndpoint(db, store, log, {
    keys,
    cache,
    observer,
    secret,
    readAheadChunks: config.readAheadChunks,
  });
  const address = await endpoint.listenOnTcp(config.readHost, config.readPort);
  const target: ReaderTarget = {
    kind: "tcp",
    host: config.readAdvertisedHost ?? config.readHost,
    port: address.port,
    secretFile: config.readerSecretFile ?? config.readSecretFile,
  };
  return { endpoint, target };
}

async function hasFileReader(db: pg.Pool): Promise<boolean> {
  const { rows } = await db.query<{ present: boolean }>(
    "SELECT EXISTS (SELECT FROM pg_foreign_server WHERE srvname = 'pg_offload_reader') AS present",
  );
  return rows[0]?.present === true;
}
