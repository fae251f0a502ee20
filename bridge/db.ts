import pg from "pg";
import { setTimeout as sleep } from "node:timers/promises";
import { backoffDelayMs, isConnectionLoss } from "./errors.ts";
import type { Logger } from "./log.ts";

// Every bridge session writes and reads COPY text and key bounds in one fixed form, whatever the
// database's defaults: ISO dates, UTC, shortest exact floats, hex bytea.
const SESSION_OPTIONS = [
  "-c DateStyle=ISO,YMD",
  "-c TimeZone=UTC",
  "-c IntervalStyle=postgres",
  "-c extra_float_digits=1",
  "-c bytea_output=hex",
  "-c application_name=pg-offload-bridge",
].join(" ");

// The bridge's own sessions resolve no name in a schema a user can create objects in: a table
// name that round-trips as text (a partition's, say) always means the same table.
const PINNED_SEARCH_PATH = "-c search_path=pg_catalog,pg_temp";

export function createPool(databaseUrl: string, log: Logger, max = 6): pg.Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    options: `${SESSION_OPTIONS} ${PINNED_SEARCH_PATH}`,
    max,
    keepAlive: true,
  });
  // A connection can die at any time (a server restart, a network cut). Without an 'error'
  // listener Node would end the bridge; the pool listens only while a client is idle, so every
  // client gets one of its own, checked out or not. The query in flight fails and its job retries;
  // the pool drops the dead client and the next query connects again.
  pool.on("connect", (client) =>
    client.on("error", (error) => log.warn("database connection lost", { error })),
  );
  pool.on("error", () => {}); // the client's own listener above has logged it
  return pool;
}

export function createClient(databaseUrl: string): pg.Client {
  return new pg.Client({
    connectionString: databaseUrl,
    options: SESSION_OPTIONS,
    keepAlive: true,
  });
}

/**
 * Runs a query that is safe to send twice (a read, or an update that is a no-op the second time),
 * sending it again (up to 3 times, after a short jittered pause) when the connection it went out
 * on was dead: after a server restart the pool still holds connections the restart closed, and
 * neither a cold scan nor the abort of a failed segment must fail for that.
 */
export async function idempotentQuery<R extends pg.QueryResultRow>(
  pool: pg.Pool,
  sql: string,
  params: unknown[],
): Promise<pg.QueryResult<R>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await pool.query<R>(sql, params);
    } catch (error) {
      if (attempt >= 3 || !isConnectionLoss(error)) throw error;
      await sleep(backoffDelayMs(attempt, 100));
    }
  }
}
