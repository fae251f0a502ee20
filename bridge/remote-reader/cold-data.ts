/**
 * The contract between the SQL endpoint (the bridge answering postgres_fdw over PostgreSQL's wire
 * protocol: bridge/remote-reader/sql-endpoint.ts) and what answers its statements from the
 * offloaded rows (bridge/remote-reader/remote-select.ts). The endpoint knows the protocol and
 * nothing of segments; the other side knows segments and nothing of the protocol.
 */

/** The table a connection authenticated for: its user name maps to exactly one offloaded table. */
export interface AuthorizedTable {
  /** The offloaded table, as regclass text (for messages). */
  table: string;
  /** Its OID now: every relation a statement names must be a segment of this table. */
  tableOid: number;
}

/**
 * The run-time parameters postgres_fdw sets on its session (search_path, timezone, datestyle,
 * intervalstyle, extra_float_digits, application_name, ...), by lower-case name. Evaluations run
 * under the same ones, so values print exactly as postgres_fdw expects to read them.
 */
export type SessionSettings = Map<string, string>;

/** One SELECT postgres_fdw sent, parsed by libpg-query (PostgreSQL's own parser). */
export interface RemoteSelect {
  /** The statement's text as received (for messages and logs). */
  sql: string;
  /** The SelectStmt node of libpg-query's parse tree (JSON), without the DECLARE around it. */
  tree: unknown;
  /** Text values of $1..$n (null for SQL NULL), as bound by the client. */
  params: Array<string | null>;
  /** Type OIDs of $1..$n from the Parse message (0 when the client left one unspecified). */
  paramTypes: number[];
}

export interface ResultColumn {
  name: string;
  typeOid: number;
}

export interface SelectResult {
  columns: ResultColumn[];
  /** The rows, text format (null for SQL NULL), pulled as the client fetches (backpressure). */
  rows: AsyncIterable<Array<string | null>>;
}

export interface PlanEstimate {
  startupCost: number;
  totalCost: number;
  rows: number;
  width: number;
}

export interface RelationSize {
  /** Bytes the relation's rows take (COPY text), for ANALYZE's page estimate. */
  bytes: number;
  rows: number;
}

/** A relation a statement names, as postgres_fdw writes it (schema_name, table_name options). */
export interface RemoteRelationName {
  schema: string;
  name: string;
}

export interface ColdData {
  /** The table a user name stands for, or undefined (the endpoint then refuses the login). */
  authorize(user: string): Promise<AuthorizedTable | undefined>;
  /** Runs one SELECT; errors are ColdReadError with a message for the client. */
  select(
    table: AuthorizedTable,
    query: RemoteSelect,
    settings: SessionSettings,
    signal: AbortSignal,
  ): Promise<SelectResult>;
  /** For use_remote_estimate's EXPLAIN: what the SELECT would read. */
  estimate(table: AuthorizedTable, query: RemoteSelect): Promise<PlanEstimate>;
  /** For ANALYZE's size and row-count queries. */
  relationSize(table: AuthorizedTable, relation: RemoteRelationName): Promise<RelationSize>;
}

/**
 * A statement the cold side refuses or fails, with the SQLSTATE the client should see (for
 * example 42501 for a relation of another table, 0A000 for a shape the reader does not serve).
 */
export class ColdReadError extends Error {
  override readonly name = "ColdReadError";

  constructor(
    message: string,
    readonly sqlState: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
