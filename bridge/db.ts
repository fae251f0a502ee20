import pg from "pg";
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

export function createPool(databaseUrl: string, log: Logger, max = 6): pg.Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    options: SESSION_OPTIONS,
    max,
    keepAlive: true,
  });
  // An idle client that loses its connection must not crash the process; the next query reconnects.
  pool.on("error", (error) => log.warn("idle database connection lost", { error }));
  return pool;
}

export function createClient(databaseUrl: string): pg.Client {
  return new pg.Client({
    connectionString: databaseUrl,
    options: SESSION_OPTIONS,
    keepAlive: true,
  });
}
