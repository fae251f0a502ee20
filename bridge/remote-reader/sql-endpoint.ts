/**
 * The SQL endpoint: the bridge answering postgres_fdw as a PostgreSQL server (wire protocol 3.0)
 * so that offloaded rows can be read through a foreign table. A login's user name stands for one
 * offloaded table (ColdData.authorize) and its password is endpointPassword(secret, user),
 * checked with SCRAM-SHA-256. The statements postgres_fdw sends (session SETs, transactions and
 * savepoints, DECLARE/FETCH/MOVE/CLOSE of cursors over a SELECT, EXPLAIN for remote estimates,
 * ANALYZE's size queries) are parsed with libpg-query and answered from ColdData; anything else
 * is refused with an error naming it. Rows are pulled from ColdData as the client fetches them.
 */
import { randomInt } from "node:crypto";
import { once } from "node:events";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { createSecureContext, TLSSocket, type SecureContext } from "node:tls";
import { toError } from "../errors.ts";
import { listening } from "../http-listen.ts";
import type { Logger } from "../log.ts";
import {
  ColdReadError,
  type AuthorizedTable,
  type ColdData,
  type RemoteSelect,
  type ResultColumn,
  type SessionSettings,
} from "./cold-data.ts";
import { endpointPassword } from "./endpoint-password.ts";
import {
  excerpt,
  parameterCount,
  parseStatements,
  MAX_STATEMENT_BYTES,
  type Statement,
} from "./remote-statements.ts";
import { SCRAM_MECHANISM, ScramExchange, ScramProtocolError } from "./scram-server.ts";
import * as wire from "./wire-messages.ts";
import { FieldReader, ProtocolError, type TransactionStatus } from "./wire-messages.ts";

export interface SqlEndpointOptions {
  /** Derives each user's password (endpointPassword). Never logged. */
  secret: Buffer;
  /** When set, clients may (and postgres_fdw with sslmode=require must) use TLS. */
  tls?: { key: Buffer; cert: Buffer };
  /** Reported as server_version; postgres_fdw adapts some statements to it. */
  serverVersion?: string;
  /** Connections served at once; more are refused (53300). */
  maxConnections?: number;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const MAX_STARTUP_PACKET = 10_000;
/** The longest message: a statement of MAX_STATEMENT_BYTES plus its parameters and framing. */
const MAX_MESSAGE = 2 * MAX_STATEMENT_BYTES;
/** Input buffered before the socket is paused. */
const INPUT_HIGH_WATER = 256 * 1024;
/** Output gathered before it is written (and the socket's drain awaited). */
const OUTPUT_HIGH_WATER = 64 * 1024;
const AUTHENTICATION_TIMEOUT_MS = 60_000;
/** Cursors, prepared statements and portals a session may hold at once. */
const MAX_OBJECTS = 256;

/** The client asked (CancelRequest) to cancel the running statement, or the session is ending. */
class CancelledError extends Error {
  override readonly name = "CancelledError";
  readonly sqlState = "57014";

  constructor(message = "canceling statement due to user request") {
    super(message);
  }
}

/** An error a statement ends with, sent to the client as an ErrorResponse. */
class StatementError extends Error {
  override readonly name = "StatementError";

  constructor(
    message: string,
    readonly sqlState: string,
  ) {
    super(message);
  }
}

/** Reads length-framed packets off a stream, pausing it while enough input is buffered. */
class PacketReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private wake: (() => void) | undefined;
  private ended = false;

  constructor(private readonly stream: Duplex) {
    stream.on("data", this.onData);
    stream.on("end", this.onEnd);
    stream.on("close", this.onEnd);
  }

  get pending(): number {
    return this.buffered;
  }

  detach(): void {
    this.stream.off("data", this.onData);
    this.stream.off("end", this.onEnd);
    this.stream.off("close", this.onEnd);
    this.stream.pause();
  }

  private readonly onData = (chunk: Buffer) => {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered >= INPUT_HIGH_WATER) this.stream.pause();
    this.notify();
  };

  private readonly onEnd = () => {
    this.ended = true;
    this.notify();
  };

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private async fill(bytes: number): Promise<boolean> {
    while (this.buffered < bytes) {
      if (this.ended) return false;
      this.stream.resume();
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    return true;
  }

  private take(bytes: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const taken = all.subarray(0, bytes);
    const rest = all.subarray(bytes);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return taken;
  }

  private peekInt32(at: number): number {
    const head = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = [head];
    return head.readInt32BE(at);
  }

  /** A startup-phase packet (without its length), or undefined at the end of the stream. */
  async startupPacket(): Promise<Buffer | undefined> {
    if (!(await this.fill(4))) return undefined;
    const length = this.peekInt32(0);
    if (length < 8 || length > MAX_STARTUP_PACKET) {
      throw new ProtocolError(`invalid length of startup packet (${length} bytes)`);
    }
    if (!(await this.fill(length))) return undefined;
    return this.take(length).subarray(4);
  }

  /** The next message (type and body), or undefined at the end of the stream. */
  async message(): Promise<{ type: string; body: Buffer } | undefined> {
    if (!(await this.fill(5))) return undefined;
    const length = this.peekInt32(1);
    if (length < 4 || length > MAX_MESSAGE) {
      throw new ProtocolError(`invalid message length (${length} bytes)`);
    }
    if (!(await this.fill(1 + length))) return undefined;
    const packet = this.take(1 + length);
    return { type: String.fromCharCode(packet[0]!), body: packet.subarray(5) };
  }
}

/** Messages gathered and written together; awaits the socket's drain when it is behind. */
class Output {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(private readonly stream: Duplex) {}

  send(message: Buffer): void {
    this.parts.push(message);
    this.size += message.length;
  }

  get full(): boolean {
    return this.size >= OUTPUT_HIGH_WATER;
  }

  async flush(): Promise<void> {
    if (this.size === 0 || this.stream.destroyed) return;
    const data = Buffer.concat(this.parts);
    this.parts = [];
    this.size = 0;
    if (!this.stream.write(data)) {
      await Promise.race([once(this.stream, "drain"), once(this.stream, "close")]);
    }
  }
}

interface Cursor {
  name: string;
  query: RemoteSelect;
  columns: ResultColumn[];
  rows: AsyncIterator<Array<string | null>>;
  controller: AbortController;
  /** Savepoints open when it was declared: rolling back to one of them closes it. */
  depth: number;
  done: boolean;
  /** A pull was interrupted (cancel): its iterator may still be busy, not to be awaited. */
  broken: boolean;
}

interface Prepared {
  statement: Statement | undefined;
  paramTypes: number[];
  paramCount: number;
}

interface Portal {
  prepared: Prepared;
  params: Array<string | null>;
  /** For a plain SELECT: the open result, once described or executed. */
  cursor?: Cursor;
  described: boolean;
  finished: boolean;
}

interface Savepoint {
  name: string;
  settings: SessionSettings;
}

/** One client connection, authenticated for one table. */
class Session {
  private status: TransactionStatus = "I";
  private readonly baseSettings: SessionSettings;
  readonly settings: SessionSettings;
  /** Settings at the transaction's start, restored by ROLLBACK; undefined outside a block. */
  private transactionSettings: SessionSettings | undefined;
  /** Names SET LOCAL set in this transaction: COMMIT restores them. */
  private readonly localNames = new Set<string>();
  private savepoints: Savepoint[] = [];
  private readonly cursors = new Map<string, Cursor>();
  private readonly prepared = new Map<string, Prepared>();
  private readonly portals = new Map<string, Portal>();
  /** The statement running now, which a CancelRequest aborts. */
  private running: AbortController | undefined;
  /** After an error in the extended protocol, messages up to the next Sync are skipped. */
  private skipToSync = false;
  private ended = false;

  constructor(
    private readonly cold: ColdData,
    private readonly table: AuthorizedTable,
    private readonly out: Output,
    private readonly log: Logger,
    startupSettings: SessionSettings,
  ) {
    this.baseSettings = new Map(startupSettings);
    this.settings = new Map(startupSettings);
  }

  cancel(): void {
    this.running?.abort(new CancelledError());
  }

  /** Between transactions and statements: nothing is lost by ending the session now. */
  get idle(): boolean {
    return this.status === "I" && this.running === undefined && this.cursors.size === 0;
  }

  /** The connection is gone: every open result is abandoned. */
  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.running?.abort(new CancelledError("the client connection ended"));
    for (const portal of this.portals.values()) {
      if (portal.cursor) await this.closeCursor(portal.cursor, "connection ended");
    }
    this.portals.clear();
    await this.closeCursors(() => true, "connection ended");
  }

  /** Handles one message of the query phase; false for Terminate. */
  async handle(type: string, body: Buffer): Promise<boolean> {
    const fields = new FieldReader(body);
    if (type === "X") return false;
    if (type === "Q") {
      await this.simpleQuery(fields.cstring());
      return true;
    }
    if (type === "S") {
      this.skipToSync = false;
      if (this.status === "I") await this.dropPortals();
      this.out.send(wire.readyForQuery(this.status));
      await this.out.flush();
      return true;
    }
    if (type === "H") {
      await this.out.flush();
      return true;
    }
    if (this.skipToSync) return true;
    try {
      switch (type) {
        case "P":
          await this.parseMessage(fields);
          break;
        case "B":
          await this.bindMessage(fields);
          break;
        case "D":
          await this.describeMessage(fields);
          break;
        case "E":
          await this.executeMessage(fields);
          break;
        case "C":
          await this.closeMessage(fields);
          break;
        default:
          throw new ProtocolError(`unexpected message type "${type}"`);
      }
    } catch (error) {
      if (error instanceof ProtocolError) throw error;
      this.fail(error);
      this.skipToSync = true;
    }
    if (this.out.full) await this.out.flush();
    return true;
  }

  /** Sends the error a statement ended with; a transaction block is then failed. */
  private fail(thrown: unknown, statement?: string): void {
    const error = toError(thrown);
    let sqlState = "XX000";
    if (error instanceof ColdReadError || error instanceof StatementError)
      sqlState = error.sqlState;
    else if (error instanceof CancelledError) sqlState = error.sqlState;
    if (sqlState === "XX000") {
      this.log.error("a statement of the SQL endpoint failed", {
        error,
        statement: statement && excerpt(statement),
      });
    } else {
      this.log.info("statement refused or failed", {
        sqlState,
        message: error.message,
        statement: statement && excerpt(statement),
      });
    }
    this.out.send(wire.errorResponse({ severity: "ERROR", sqlState, message: error.message }));
    if (this.status === "T") this.status = "E";
  }

  private async simpleQuery(text: string): Promise<void> {
    try {
      const statements = await parseStatements(text);
      if (statements.length === 0) this.out.send(wire.emptyQueryResponse());
      for (const statement of statements) {
        await this.execute(statement, { params: [], paramTypes: [], describe: true, maxRows: 0 });
      }
    } catch (error) {
      this.fail(error, text);
    }
    // The simple protocol's implicit transaction ends with the query.
    if (this.status === "I") await this.dropPortals();
    this.out.send(wire.readyForQuery(this.status));
    await this.out.flush();
  }

  private async parseMessage(fields: FieldReader): Promise<void> {
    const name = fields.cstring();
    const text = fields.cstring();
    const count = fields.int16();
    const paramTypes: number[] = [];
    for (let i = 0; i < count; i++) paramTypes.push(fields.int32());
    if (name !== "" && this.prepared.has(name)) {
      throw new StatementError(`prepared statement "${name}" already exists`, "42P05");
    }
    const statements = await parseStatements(text);
    if (statements.length > 1) {
      throw new StatementError(
        "cannot insert multiple commands into a prepared statement",
        "42601",
      );
    }
    const statement = statements[0];
    if (statement) this.refuseWhenFailed(statement);
    const paramCount = Math.max(paramTypes.length, parameterCount(statement));
    while (paramTypes.length < paramCount) paramTypes.push(0);
    if (name !== "" && this.prepared.size >= MAX_OBJECTS) {
      throw new StatementError(`more than ${MAX_OBJECTS} prepared statements`, "54000");
    }
    this.prepared.set(name, { statement, paramTypes, paramCount });
    this.out.send(wire.parseComplete());
  }

  private async bindMessage(fields: FieldReader): Promise<void> {
    const portalName = fields.cstring();
    const statementName = fields.cstring();
    const formats: number[] = [];
    for (let i = fields.int16(); i > 0; i--) formats.push(fields.int16());
    const params: Array<string | null> = [];
    for (let i = fields.int16(); i > 0; i--) {
      const length = fields.int32();
      params.push(length < 0 ? null : fields.bytes(length).toString("utf8"));
    }
    const resultFormats: number[] = [];
    for (let i = fields.int16(); i > 0; i--) resultFormats.push(fields.int16());
    const prepared = this.prepared.get(statementName);
    if (!prepared) {
      throw new StatementError(`prepared statement "${statementName}" does not exist`, "26000");
    }
    if (formats.some((f) => f !== 0) || resultFormats.some((f) => f !== 0)) {
      throw new StatementError("pg-offload: the cold reader speaks text format only", "0A000");
    }
    if (params.length !== prepared.paramCount) {
      throw new ProtocolError(
        `bind message supplies ${params.length} parameters, but prepared statement "${statementName}" requires ${prepared.paramCount}`,
      );
    }
    const existing = this.portals.get(portalName);
    if (existing) {
      if (portalName !== "")
        throw new StatementError(`portal "${portalName}" already exists`, "42P03");
      await this.dropPortal(portalName);
    }
    if (this.portals.size >= MAX_OBJECTS) {
      throw new StatementError(`more than ${MAX_OBJECTS} portals`, "54000");
    }
    this.portals.set(portalName, { prepared, params, described: false, finished: false });
    this.out.send(wire.bindComplete());
  }

  private async describeMessage(fields: FieldReader): Promise<void> {
    const what = fields.byte();
    const name = fields.cstring();
    if (what === "S") {
      const prepared = this.prepared.get(name);
      if (!prepared)
        throw new StatementError(`prepared statement "${name}" does not exist`, "26000");
      // Unspecified parameter types are described as text, in which they are sent.
      this.out.send(wire.parameterDescription(prepared.paramTypes.map((t) => t || 25)));
      const columns = this.columnsWithoutRunning(prepared.statement);
      this.out.send(columns ? wire.rowDescription(columns) : wire.noData());
      return;
    }
    const portal = this.portals.get(name);
    if (!portal) throw new StatementError(`portal "${name}" does not exist`, "34000");
    portal.described = true;
    const statement = portal.prepared.statement;
    if (statement?.kind === "select") {
      portal.cursor ??= await this.open("", statement, portal.params, portal.prepared.paramTypes);
      this.out.send(wire.rowDescription(portal.cursor.columns));
      return;
    }
    const columns = this.columnsWithoutRunning(statement);
    this.out.send(columns ? wire.rowDescription(columns) : wire.noData());
  }

  /** The columns a statement returns, when known before running it (not for a plain SELECT). */
  private columnsWithoutRunning(statement: Statement | undefined): ResultColumn[] | undefined {
    switch (statement?.kind) {
      case undefined:
        return undefined;
      case "select":
        throw new StatementError(
          "pg-offload: the cold reader describes a SELECT only once its parameters are bound (Describe the portal)",
          "0A000",
        );
      case "fetch":
        return statement.move ? undefined : this.cursor(statement.cursor).columns;
      case "rewind":
        return statement.move ? undefined : this.cursor(statement.cursor).columns;
      case "explain":
        return [{ name: "QUERY PLAN", typeOid: 25 }];
      case "relation-pages":
        return [{ name: "?column?", typeOid: 20 }];
      case "relation-info":
        return statement.columns.map((name) => ({ name, typeOid: CATALOG_TYPES[name] ?? 25 }));
      default:
        return undefined;
    }
  }

  private async executeMessage(fields: FieldReader): Promise<void> {
    const name = fields.cstring();
    const maxRows = fields.int32();
    const portal = this.portals.get(name);
    if (!portal) throw new StatementError(`portal "${name}" does not exist`, "34000");
    const statement = portal.prepared.statement;
    if (!statement) {
      this.out.send(wire.emptyQueryResponse());
      return;
    }
    if (portal.finished) {
      // Run to completion already (PostgreSQL would repeat a utility statement's tag).
      this.out.send(wire.commandComplete(statement.kind === "select" ? "SELECT 0" : "SET"));
      return;
    }
    if (statement.kind === "select") {
      portal.cursor ??= await this.open("", statement, portal.params, portal.prepared.paramTypes);
      const sent = await this.pull(portal.cursor, maxRows > 0 ? maxRows : "all", false);
      if (maxRows > 0 && sent === maxRows && !portal.cursor.done) {
        this.out.send(wire.portalSuspended());
        return;
      }
      portal.finished = true;
      await this.closeCursor(portal.cursor, "complete");
      portal.cursor = undefined;
      this.out.send(wire.commandComplete(`SELECT ${sent}`));
      return;
    }
    portal.finished = true;
    await this.execute(statement, {
      params: portal.params,
      paramTypes: portal.prepared.paramTypes,
      describe: false,
      maxRows,
    });
  }

  private async closeMessage(fields: FieldReader): Promise<void> {
    const what = fields.byte();
    const name = fields.cstring();
    if (what === "S") this.prepared.delete(name);
    else await this.dropPortal(name);
    this.out.send(wire.closeComplete());
  }

  private async dropPortal(name: string): Promise<void> {
    const portal = this.portals.get(name);
    this.portals.delete(name);
    if (portal?.cursor) await this.closeCursor(portal.cursor, "portal closed");
  }

  private async dropPortals(): Promise<void> {
    for (const name of [...this.portals.keys()]) await this.dropPortal(name);
  }

  /** In a failed transaction block only its end is accepted. */
  private refuseWhenFailed(statement: Statement): void {
    if (this.status !== "E") return;
    if (
      statement.kind === "transaction" &&
      ["commit", "rollback", "rollback-to"].includes(statement.action)
    ) {
      return;
    }
    throw new StatementError(
      "current transaction is aborted, commands ignored until end of transaction block",
      "25P02",
    );
  }

  private cursor(name: string): Cursor {
    const cursor = this.cursors.get(name);
    if (!cursor) throw new StatementError(`cursor "${name}" does not exist`, "34000");
    return cursor;
  }

  private async execute(
    statement: Statement,
    how: { params: Array<string | null>; paramTypes: number[]; describe: boolean; maxRows: number },
  ): Promise<void> {
    this.refuseWhenFailed(statement);
    switch (statement.kind) {
      case "set":
        return this.set(statement);
      case "reset-all":
        this.settings.clear();
        for (const [k, v] of this.baseSettings) this.settings.set(k, v);
        this.out.send(wire.commandComplete("RESET"));
        return;
      case "set-transaction":
        this.out.send(wire.commandComplete("SET"));
        return;
      case "transaction":
        return this.transaction(statement);
      case "declare": {
        if (this.status === "I") {
          throw new StatementError(
            "DECLARE CURSOR can only be used in transaction blocks",
            "25P01",
          );
        }
        if (this.cursors.has(statement.cursor)) {
          throw new StatementError(`cursor "${statement.cursor}" already exists`, "42P03");
        }
        if (this.cursors.size >= MAX_OBJECTS) {
          throw new StatementError(`more than ${MAX_OBJECTS} open cursors`, "54000");
        }
        const select = { ...statement, kind: "select" as const };
        const cursor = await this.open(statement.cursor, select, how.params, how.paramTypes);
        this.cursors.set(statement.cursor, cursor);
        this.out.send(wire.commandComplete("DECLARE CURSOR"));
        return;
      }
      case "fetch": {
        const cursor = this.cursor(statement.cursor);
        if (how.describe && !statement.move) this.out.send(wire.rowDescription(cursor.columns));
        const limit =
          how.maxRows > 0 && statement.count !== "all"
            ? Math.min(how.maxRows, statement.count)
            : statement.count;
        const count = await this.pull(cursor, limit, statement.move);
        this.out.send(wire.commandComplete(`${statement.move ? "MOVE" : "FETCH"} ${count}`));
        return;
      }
      case "rewind": {
        const cursor = this.cursor(statement.cursor);
        if (how.describe && !statement.move) this.out.send(wire.rowDescription(cursor.columns));
        await this.closeCursor(cursor, "rewound");
        this.cursors.delete(cursor.name);
        const again = await this.open(
          cursor.name,
          { text: cursor.query.sql, select: cursor.query.tree },
          cursor.query.params,
          cursor.query.paramTypes,
        );
        again.depth = cursor.depth;
        this.cursors.set(cursor.name, again);
        this.out.send(wire.commandComplete(`${statement.move ? "MOVE" : "FETCH"} 0`));
        return;
      }
      case "close":
        if (statement.cursor === undefined) {
          await this.closeCursors(() => true, "CLOSE ALL");
          this.out.send(wire.commandComplete("CLOSE CURSOR ALL"));
          return;
        }
        await this.closeCursor(this.cursor(statement.cursor), "closed");
        this.cursors.delete(statement.cursor);
        this.out.send(wire.commandComplete("CLOSE CURSOR"));
        return;
      case "deallocate":
        if (statement.name === undefined) {
          for (const name of [...this.prepared.keys()]) if (name !== "") this.prepared.delete(name);
          this.out.send(wire.commandComplete("DEALLOCATE ALL"));
          return;
        }
        if (!this.prepared.delete(statement.name)) {
          throw new StatementError(
            `prepared statement "${statement.name}" does not exist`,
            "26000",
          );
        }
        this.out.send(wire.commandComplete("DEALLOCATE"));
        return;
      case "explain":
        return this.explain(statement, how);
      case "select": {
        const cursor = await this.open("", statement, how.params, how.paramTypes);
        try {
          if (how.describe) this.out.send(wire.rowDescription(cursor.columns));
          const count = await this.pull(cursor, how.maxRows > 0 ? how.maxRows : "all", false);
          this.out.send(wire.commandComplete(`SELECT ${count}`));
        } finally {
          await this.closeCursor(cursor, "complete");
        }
        return;
      }
      case "relation-pages": {
        const size = await this.cold.relationSize(this.table, statement.relation);
        if (how.describe) this.out.send(wire.rowDescription([{ name: "?column?", typeOid: 20 }]));
        this.out.send(wire.dataRow([String(Math.floor(size.bytes / statement.blockSize))]));
        this.out.send(wire.commandComplete("SELECT 1"));
        return;
      }
      case "relation-info": {
        const size = await this.cold.relationSize(this.table, statement.relation);
        const values: Record<string, string> = {
          reltuples: String(size.rows),
          relkind: "r",
          relpages: String(Math.ceil(size.bytes / 8192)),
        };
        if (how.describe) {
          this.out.send(
            wire.rowDescription(
              statement.columns.map((name) => ({ name, typeOid: CATALOG_TYPES[name] ?? 25 })),
            ),
          );
        }
        this.out.send(wire.dataRow(statement.columns.map((c) => values[c] ?? null)));
        this.out.send(wire.commandComplete("SELECT 1"));
        return;
      }
    }
  }

  private set(statement: Extract<Statement, { kind: "set" }>): void {
    if (statement.local && this.status === "I") {
      // As PostgreSQL: SET LOCAL outside a transaction block has no effect (it warns).
      this.out.send(wire.commandComplete("SET"));
      return;
    }
    if (statement.local) this.localNames.add(statement.name);
    else this.localNames.delete(statement.name);
    const value = statement.value ?? this.baseSettings.get(statement.name);
    if (value === undefined) this.settings.delete(statement.name);
    else this.settings.set(statement.name, value);
    if (statement.name === "application_name") {
      this.out.send(wire.parameterStatus("application_name", value ?? ""));
    }
    this.out.send(wire.commandComplete(statement.value === undefined ? "RESET" : "SET"));
  }

  private async transaction(statement: Extract<Statement, { kind: "transaction" }>): Promise<void> {
    const inBlock = this.status !== "I";
    switch (statement.action) {
      case "begin":
      case "start":
        if (!inBlock) {
          this.status = "T";
          this.transactionSettings = new Map(this.settings);
        }
        this.out.send(
          wire.commandComplete(statement.action === "begin" ? "BEGIN" : "START TRANSACTION"),
        );
        return;
      case "commit":
      case "rollback": {
        const failed = this.status === "E";
        await this.endTransaction(statement.action === "commit" && !failed);
        this.out.send(
          wire.commandComplete(statement.action === "commit" && !failed ? "COMMIT" : "ROLLBACK"),
        );
        return;
      }
      case "savepoint":
        if (!inBlock) {
          throw new StatementError("SAVEPOINT can only be used in transaction blocks", "25P01");
        }
        if (this.savepoints.length >= MAX_OBJECTS) {
          throw new StatementError(`more than ${MAX_OBJECTS} savepoints`, "54000");
        }
        this.savepoints.push({ name: statement.savepoint ?? "", settings: new Map(this.settings) });
        this.out.send(wire.commandComplete("SAVEPOINT"));
        return;
      case "release":
      case "rollback-to": {
        const verb = statement.action === "release" ? "RELEASE SAVEPOINT" : "ROLLBACK TO SAVEPOINT";
        if (!inBlock)
          throw new StatementError(`${verb} can only be used in transaction blocks`, "25P01");
        const at = this.savepoints.map((s) => s.name).lastIndexOf(statement.savepoint ?? "");
        if (at < 0) {
          throw new StatementError(`savepoint "${statement.savepoint}" does not exist`, "3B001");
        }
        if (statement.action === "release") {
          if (this.status === "E")
            throw new StatementError("current transaction is aborted", "25P02");
          this.savepoints.length = at;
          this.out.send(wire.commandComplete("RELEASE"));
          return;
        }
        const savepoint = this.savepoints[at]!;
        this.savepoints.length = at + 1;
        this.settings.clear();
        for (const [k, v] of savepoint.settings) this.settings.set(k, v);
        await this.closeCursors((c) => c.depth > at, "rolled back to savepoint");
        this.status = "T";
        this.out.send(wire.commandComplete("ROLLBACK"));
        return;
      }
    }
  }

  private async endTransaction(commit: boolean): Promise<void> {
    if (this.transactionSettings) {
      if (!commit) {
        this.settings.clear();
        for (const [k, v] of this.transactionSettings) this.settings.set(k, v);
      } else {
        for (const name of this.localNames) {
          const before = this.transactionSettings.get(name);
          if (before === undefined) this.settings.delete(name);
          else this.settings.set(name, before);
        }
      }
    }
    this.localNames.clear();
    this.transactionSettings = undefined;
    this.savepoints = [];
    this.status = "I";
    await this.closeCursors(() => true, commit ? "commit" : "rollback");
    await this.dropPortals();
  }

  private async explain(
    statement: Extract<Statement, { kind: "explain" }>,
    how: { params: Array<string | null>; paramTypes: number[]; describe: boolean },
  ): Promise<void> {
    const query: RemoteSelect = {
      sql: statement.text.replace(/^\s*explain\s+/i, ""),
      tree: statement.select,
      params: how.params,
      paramTypes: how.paramTypes,
    };
    const estimate = await this.withCancel(new AbortController(), () =>
      this.cold.estimate(this.table, query),
    );
    const line =
      `Foreign Scan on ${this.table.table}  (cost=${estimate.startupCost.toFixed(2)}..` +
      `${estimate.totalCost.toFixed(2)} rows=${Math.max(0, Math.round(estimate.rows))} ` +
      `width=${Math.max(0, Math.round(estimate.width))})`;
    if (how.describe) this.out.send(wire.rowDescription([{ name: "QUERY PLAN", typeOid: 25 }]));
    this.out.send(wire.dataRow([line]));
    this.out.send(wire.commandComplete("EXPLAIN"));
  }

  /** Runs `work` as the statement a CancelRequest cancels. */
  private async withCancel<T>(controller: AbortController, work: () => Promise<T>): Promise<T> {
    this.running = controller;
    try {
      return await abortable(work(), controller.signal);
    } finally {
      this.running = undefined;
    }
  }

  /** Starts a SELECT on the cold side; its rows are pulled as they are fetched. */
  private async open(
    name: string,
    statement: { text: string; select: unknown },
    params: Array<string | null>,
    paramTypes: number[],
  ): Promise<Cursor> {
    const query: RemoteSelect = { sql: statement.text, tree: statement.select, params, paramTypes };
    const controller = new AbortController();
    const result = await this.withCancel(controller, () =>
      this.cold.select(this.table, query, new Map(this.settings), controller.signal),
    );
    return {
      name,
      query,
      columns: result.columns,
      rows: result.rows[Symbol.asyncIterator](),
      controller,
      depth: this.savepoints.length,
      done: false,
      broken: false,
    };
  }

  /** Sends (or for MOVE skips) up to `limit` rows of a cursor; returns how many. */
  private async pull(cursor: Cursor, limit: number | "all", move: boolean): Promise<number> {
    let count = 0;
    while (!cursor.done && (limit === "all" || count < limit)) {
      let next: IteratorResult<Array<string | null>>;
      try {
        next = await this.withCancel(cursor.controller, () => cursor.rows.next());
      } catch (error) {
        cursor.broken = true;
        cursor.done = true;
        throw error;
      }
      if (next.done) {
        cursor.done = true;
        break;
      }
      const row = next.value;
      if (!Array.isArray(row) || row.length !== cursor.columns.length) {
        cursor.done = true;
        throw new Error(
          `the cold side gave a row of ${Array.isArray(row) ? row.length : "no"} values for ${cursor.columns.length} columns`,
        );
      }
      count++;
      if (!move) {
        this.out.send(wire.dataRow(row));
        if (this.out.full) await this.out.flush();
      }
    }
    return count;
  }

  private async closeCursors(which: (c: Cursor) => boolean, why: string): Promise<void> {
    for (const cursor of [...this.cursors.values()]) {
      if (!which(cursor)) continue;
      this.cursors.delete(cursor.name);
      await this.closeCursor(cursor, why);
    }
  }

  /** Ends a result's iterator (its `finally` blocks run); a broken one is aborted instead. */
  private async closeCursor(cursor: Cursor, why: string): Promise<void> {
    cursor.done = true;
    if (cursor.broken || this.ended) {
      cursor.controller.abort(new CancelledError(`the result was abandoned (${why})`));
      // A pull may still be pending on it: not awaited, but its failure is logged.
      Promise.resolve(cursor.rows.return?.()).catch((error: unknown) =>
        this.log.warn("closing an abandoned cold result failed", { error, why }),
      );
      return;
    }
    try {
      await cursor.rows.return?.();
    } catch (error) {
      this.log.warn("closing a cold result failed", { error, why });
    }
  }
}

const CATALOG_TYPES: Record<string, number> = { reltuples: 700, relkind: 18, relpages: 23 };

/** The promise, or a rejection with the signal's reason as soon as it aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(toError(signal.reason));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(toError(signal.reason));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(toError(error));
      },
    );
  });
}

/** Startup parameters taken as session settings (others, but `options`, are ignored). */
const STARTUP_SETTINGS: Record<string, string> = {
  application_name: "application_name",
  client_encoding: "client_encoding",
  datestyle: "datestyle",
  timezone: "timezone",
  intervalstyle: "intervalstyle",
  extra_float_digits: "extra_float_digits",
  search_path: "search_path",
};

export class SqlEndpoint {
  private readonly server: Server;
  private readonly sessions = new Map<
    number,
    { session: Session; secret: number; stream: Duplex }
  >();
  /** close() was called: sessions end as soon as they are idle. */
  private closing = false;
  private readonly sockets = new Set<Socket>();
  private readonly secureContext: SecureContext | undefined;
  private readonly serverVersion: string;
  private readonly maxConnections: number;
  private readonly serving = new Set<Promise<void>>();

  constructor(
    private readonly cold: ColdData,
    private readonly log: Logger,
    private readonly options: SqlEndpointOptions,
  ) {
    this.secureContext = options.tls ? createSecureContext(options.tls) : undefined;
    this.serverVersion = options.serverVersion ?? "18.0";
    this.maxConnections = options.maxConnections ?? 100;
    this.server = createServer((socket) => this.accept(socket));
    this.server.on("error", (error) =>
      this.log.error("the SQL endpoint's listener failed", { error }),
    );
  }

  async listenOnTcp(host: string, port: number): Promise<AddressInfo> {
    await listening(this.server, () => this.server.listen(port, host));
    return this.server.address() as AddressInfo;
  }

  /** Stops listening, gives sessions `graceMs` to end, then closes their connections. */
  async close(graceMs = 0): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // postgres_fdw keeps its connections open between queries: an idle one has nothing to wait
    // for, and one in a transaction ends as soon as it is idle again (or at the grace period).
    this.closing = true;
    for (const { session, stream } of this.sessions.values()) {
      if (session.idle) stream.destroy();
    }
    const all = Promise.all([...this.serving]);
    const timer = setTimeout(() => this.failSessionsNow(), graceMs);
    try {
      await all;
    } finally {
      clearTimeout(timer);
    }
    await closed;
  }

  /**
   * Ends every session, a scan still running included, with an error saying why (a query must
   * never end short and look complete: postgres_fdw fails it with this message).
   */
  failSessionsNow(): void {
    for (const { session, stream } of this.sessions.values()) {
      session.cancel();
      stream.end(
        wire.errorResponse({
          severity: "FATAL",
          sqlState: "57P01",
          message: "pg-offload: the bridge stopped while serving a scan; run the query again",
        }),
      );
    }
    // Whatever has not gone after a while (a peer that stopped reading) is cut.
    setTimeout(() => {
      for (const socket of this.sockets) socket.destroy();
    }, 2_000).unref();
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.on("error", (error) => this.log.info("SQL endpoint connection error", { error }));
    const done = this.serve(socket)
      .catch((error: unknown) =>
        this.log.error("a SQL endpoint connection failed", { error: toError(error) }),
      )
      .finally(() => {
        socket.destroy();
        this.sockets.delete(socket);
        this.serving.delete(done);
      });
    this.serving.add(done);
  }

  private async serve(socket: Socket): Promise<void> {
    let stream: Duplex = socket;
    let reader = new PacketReader(socket);
    const fatal = async (sqlState: string, message: string) => {
      stream.write(wire.errorResponse({ severity: "FATAL", sqlState, message }));
      stream.end();
    };
    const timer = setTimeout(() => {
      this.log.info("SQL endpoint client did not authenticate in time");
      socket.destroy();
    }, AUTHENTICATION_TIMEOUT_MS);
    let parameters: Map<string, string>;
    try {
      for (;;) {
        const packet = await reader.startupPacket();
        if (!packet) return;
        const code = packet.readInt32BE(0);
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          // Anything sent after the request but before our answer would bypass TLS.
          if (reader.pending > 0) throw new ProtocolError("data received before TLS started");
          if (code === GSSENC_REQUEST || !this.secureContext || stream !== socket) {
            stream.write("N");
            continue;
          }
          reader.detach();
          stream.write("S");
          const secure = new TLSSocket(socket, {
            isServer: true,
            secureContext: this.secureContext,
          });
          secure.on("error", (error) => this.log.info("SQL endpoint TLS error", { error }));
          await Promise.race([
            once(secure, "secure"),
            once(secure, "close").then(() => Promise.reject(new ProtocolError("TLS failed"))),
          ]);
          stream = secure;
          reader = new PacketReader(secure);
          continue;
        }
        if (code === CANCEL_REQUEST) {
          if (packet.length >= 12) this.cancel(packet.readInt32BE(4), packet.readInt32BE(8));
          stream.end();
          return;
        }
        if (code >> 16 !== 3) {
          await fatal("0A000", `unsupported frontend protocol ${code >> 16}.${code & 0xffff}`);
          return;
        }
        parameters = startupParameters(packet.subarray(4));
        const unrecognized = [...parameters.keys()].filter((k) => k.startsWith("_pq_."));
        if ((code & 0xffff) > 0 || unrecognized.length > 0) {
          stream.write(wire.negotiateProtocolVersion(0, unrecognized));
        }
        break;
      }
      const user = parameters.get("user");
      if (!user) return await fatal("28000", "no PostgreSQL user name specified in startup packet");
      if (parameters.get("replication")) {
        return await fatal("0A000", "pg-offload: the cold reader does not serve replication");
      }
      if (parameters.get("options")) {
        return await fatal("0A000", "pg-offload: the cold reader does not take startup options");
      }
      const encoding = parameters.get("client_encoding");
      if (encoding && !/^(utf-?8|unicode)$/i.test(encoding)) {
        return await fatal(
          "0A000",
          `pg-offload: the cold reader speaks UTF8 only, not ${encoding}`,
        );
      }
      if (this.sessions.size >= this.maxConnections) {
        return await fatal("53300", "sorry, too many clients already");
      }
      const table = await this.authenticate(stream, reader, user);
      if (!table) {
        await fatal("28P01", `password authentication failed for user "${user}"`);
        this.log.info("SQL endpoint login refused", { user });
        return;
      }
      clearTimeout(timer);
      await this.run(stream, reader, user, table, parameters);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.log.warn("SQL endpoint client broke the protocol at startup", { error });
      await fatal(error.sqlState, error.message);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SCRAM-SHA-256 against endpointPassword(secret, user); the table, or undefined if refused. */
  private async authenticate(
    stream: Duplex,
    reader: PacketReader,
    user: string,
  ): Promise<AuthorizedTable | undefined> {
    stream.write(wire.authenticationSasl([SCRAM_MECHANISM]));
    const first = await reader.message();
    if (!first) return undefined;
    if (first.type !== "p") throw new ProtocolError("expected a SASL initial response");
    const initial = new FieldReader(first.body);
    if (initial.cstring() !== SCRAM_MECHANISM) {
      throw new ProtocolError("client selected an invalid SASL authentication mechanism");
    }
    const length = initial.int32();
    const clientFirst = initial.bytes(Math.max(0, length)).toString("utf8");
    // Every user name gets the same exchange (no oracle of which ones exist); the table is looked
    // up while the client computes its proof.
    const exchange = new ScramExchange(endpointPassword(this.options.secret, user));
    const authorized = this.cold.authorize(user);
    authorized.catch(() => {});
    try {
      stream.write(wire.authenticationSaslContinue(exchange.first(clientFirst)));
      const final = await reader.message();
      if (!final) return undefined;
      if (final.type !== "p") throw new ProtocolError("expected a SASL response");
      const serverFinal = exchange.final(final.body.toString("utf8"));
      const table = await authorized;
      if (serverFinal === undefined || table === undefined) return undefined;
      stream.write(wire.authenticationSaslFinal(serverFinal));
      return table;
    } catch (error) {
      if (error instanceof ScramProtocolError) {
        throw new ProtocolError(`SCRAM exchange failed: ${error.message}`, "28000");
      }
      throw error;
    }
  }

  private async run(
    stream: Duplex,
    reader: PacketReader,
    user: string,
    table: AuthorizedTable,
    parameters: Map<string, string>,
  ): Promise<void> {
    const out = new Output(stream);
    const settings: SessionSettings = new Map();
    for (const [key, value] of parameters) {
      const name = STARTUP_SETTINGS[key.toLowerCase()];
      if (name) settings.set(name, value);
    }
    let pid: number;
    do pid = randomInt(1, 2 ** 31 - 1);
    while (this.sessions.has(pid));
    const secret = randomInt(0, 2 ** 31 - 1);
    const log = this.log.child({ user, table: table.table, pid });
    const session = new Session(this.cold, table, out, log, settings);
    this.sessions.set(pid, { session, secret, stream });
    const onClose = () => void session.end();
    stream.on("close", onClose);
    log.info("SQL endpoint session started", {
      application: parameters.get("application_name"),
    });
    try {
      out.send(wire.authenticationOk());
      const status: Array<[string, string]> = [
        ["server_version", this.serverVersion],
        ["server_encoding", "UTF8"],
        ["client_encoding", "UTF8"],
        ["DateStyle", "ISO, MDY"],
        ["IntervalStyle", "postgres"],
        ["TimeZone", "GMT"],
        ["integer_datetimes", "on"],
        ["standard_conforming_strings", "on"],
        ["is_superuser", "off"],
        ["session_authorization", user],
        ["application_name", parameters.get("application_name") ?? ""],
        ["default_transaction_read_only", "on"],
        ["in_hot_standby", "off"],
      ];
      for (const [name, value] of status) out.send(wire.parameterStatus(name, value));
      out.send(wire.backendKeyData(pid, secret));
      out.send(wire.readyForQuery("I"));
      await out.flush();
      for (;;) {
        const message = await reader.message();
        if (!message) break;
        if (!(await session.handle(message.type, message.body))) break;
        if (this.closing && session.idle) break;
      }
    } catch (error) {
      if (error instanceof ProtocolError) {
        log.warn("SQL endpoint client broke the protocol", { error });
        out.send(
          wire.errorResponse({
            severity: "FATAL",
            sqlState: error.sqlState,
            message: error.message,
          }),
        );
        await out.flush();
        return;
      }
      throw error;
    } finally {
      stream.off("close", onClose);
      this.sessions.delete(pid);
      await session.end();
      log.info("SQL endpoint session ended");
    }
  }

  private cancel(pid: number, secret: number): void {
    const entry = this.sessions.get(pid);
    // A wrong key is ignored silently, as PostgreSQL does.
    if (entry && entry.secret === secret) entry.session.cancel();
  }
}

function startupParameters(body: Buffer): Map<string, string> {
  const fields = new FieldReader(body);
  const parameters = new Map<string, string>();
  for (;;) {
    const name = fields.cstring();
    if (name === "") break;
    parameters.set(name, fields.cstring());
  }
  return parameters;
}
