import type pg from "pg";
import { boundColumns, chunkBoundsOf, type ChunkBounds } from "../chunk-bounds.ts";
import { OffloadError } from "../errors.ts";
import { endpointPassword } from "./endpoint-password.ts";

/** What writing a segment of a table needs from its reader. */
export interface SegmentReading {
  /** Records the bounds of each chunk (tables read through postgres_fdw); undefined: none. */
  chunkBounds?: (raw: Buffer) => Promise<ChunkBounds>;
}

/**
 * Before a segment of a table is written (an offload or a rewrite): a table whose policy reads
 * through postgres_fdw gets its server and login on first use, the login's password set from
 * this bridge's SQL secret, and its chunks' bounds recorded.
 */
export class RemoteReaderSetup {
  constructor(
    private readonly db: pg.Pool,
    /** The SQL endpoint's secret; undefined when this bridge runs none. */
    private readonly secret: Buffer | undefined,
  ) {}

  async prepare(tableOid: number): Promise<SegmentReading> {
    const { rows } = await this.db.query<{ login: string | null; table_name: string }>(
      "SELECT offload.remote_reader_login($1::oid::regclass) AS login, $1::oid::regclass::text AS table_name",
      [tableOid],
    );
    const { login, table_name: table } = rows[0] ?? { login: null, table_name: String(tableOid) };
    if (login === null) return {};
    if (!this.secret) {
      throw new OffloadError(
        `pg-offload: table ${table} reads through postgres_fdw, but this bridge's SQL endpoint is off (PGOFFLOAD_SQL_LISTEN)`,
        {},
      );
    }
    await this.setPassword(this.secret, tableOid, login);
    return { chunkBounds: chunkBoundsOf(this.db, await boundColumns(this.db, tableOid)) };
  }

  /**
   * At start: every table's mapping gets the password this bridge's secret gives, so that a
   * rotated secret takes effect for tables no offload touches again.
   */
  async refreshPasswords(): Promise<void> {
    if (!this.secret) return;
    const { rows } = await this.db.query<{ table_oid: number; login: string }>(
      "SELECT table_id::oid AS table_oid, login FROM offload.remote_readers WHERE table_id::oid IN (SELECT oid FROM pg_class)",
    );
    for (const row of rows) await this.setPassword(this.secret, Number(row.table_oid), row.login);
  }

  private async setPassword(secret: Buffer, tableOid: number, login: string): Promise<void> {
    await this.db.query("SELECT offload.set_remote_reader_password($1::oid::regclass, $2)", [
      tableOid,
      endpointPassword(secret, login),
    ]);
  }
}
