/**
 * One read-only transaction on the bridge's pool under postgres_fdw's session settings, in which
 * the reader's queries run: values print (and constants read) exactly as in postgres_fdw's own
 * session. search_path is pinned to pg_catalog, then pg_temp (pg_temp last: an unqualified type
 * or relation name can never mean a temporary object, and functions and operators are never
 * looked up in pg_temp). Nothing is written; the transaction is rolled back.
 */
import pg from "pg";
import { ColdReadError, type SessionSettings } from "./cold-data.ts";

/** The settings taken from postgres_fdw's session; search_path is the reader's own. */
const PASSED_SETTINGS = ["timezone", "datestyle", "intervalstyle", "extra_float_digits"];

/** Text in, text out: node-postgres parses nothing. */
export const RAW_TYPES = { getTypeParser: () => (value: string) => value };

export async function inSession<T>(
  pool: pg.Pool,
  settings: SessionSettings,
  statementTimeoutMs: number,
  run: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query("BEGIN READ ONLY");
    const names = ["search_path", "statement_timeout"];
    const values = ["pg_catalog, pg_temp", `${Math.max(0, Math.floor(statementTimeoutMs))}ms`];
    for (const name of PASSED_SETTINGS) {
      const value = settings.get(name);
      if (value !== undefined) {
        names.push(name);
        values.push(value);
      }
    }
    await client.query(
      `SELECT pg_catalog.set_config(n, v, true) FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.text[])) AS s(n, v)`,
      [names, values],
    );
    return await run(client);
  } catch (error) {
    throw asColdReadError(error);
  } finally {
    try {
      await client.query("ROLLBACK");
    } catch {
      broken = true;
    }
    client.release(broken);
  }
}

/** PostgreSQL's errors keep their SQLSTATE for the client. */
export function asColdReadError(error: unknown): unknown {
  if (error instanceof ColdReadError) return error;
  if (error instanceof pg.DatabaseError && typeof error.code === "string")
    return new ColdReadError(error.message, error.code, { cause: error });
  return error;
}
