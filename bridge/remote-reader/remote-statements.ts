/**
 * What the SQL endpoint makes of a statement text: parsed by libpg-query (PostgreSQL's own
 * parser) and sorted into the few kinds postgres_fdw sends. Everything else is refused here,
 * before anything runs, with an error that names the statement.
 */
import { parse } from "libpg-query";
import { ColdReadError, type RemoteRelationName } from "./cold-data.ts";

/** The longest statement text the endpoint takes. */
export const MAX_STATEMENT_BYTES = 1024 * 1024;

/** The run-time parameters a client may set: postgres_fdw's and a few harmless ones. */
export const SETTABLE = new Set([
  "application_name",
  "statement_timeout",
  "lock_timeout",
  "idle_in_transaction_session_timeout",
  "search_path",
  "timezone",
  "datestyle",
  "intervalstyle",
  "extra_float_digits",
  "client_encoding",
]);

type Node = Record<string, unknown>;

export type Statement =
  | { kind: "set"; text: string; name: string; value: string | undefined; local: boolean }
  | { kind: "reset-all"; text: string }
  | { kind: "set-transaction"; text: string }
  | { kind: "transaction"; text: string; action: TransactionAction; savepoint?: string }
  | { kind: "declare"; text: string; cursor: string; select: unknown }
  | { kind: "fetch"; text: string; cursor: string; count: number | "all"; move: boolean }
  | { kind: "rewind"; text: string; cursor: string; move: boolean }
  | { kind: "close"; text: string; cursor: string | undefined }
  | { kind: "deallocate"; text: string; name: string | undefined }
  | { kind: "explain"; text: string; select: unknown }
  | { kind: "select"; text: string; select: unknown }
  | { kind: "relation-pages"; text: string; relation: RemoteRelationName; blockSize: number }
  | { kind: "relation-info"; text: string; relation: RemoteRelationName; columns: string[] };

export type TransactionAction =
  "begin" | "start" | "commit" | "rollback" | "savepoint" | "release" | "rollback-to";

/** The beginning of a statement, for messages (never the whole of a long one). */
export function excerpt(text: string): string {
  const flat = text.trim().replace(/\s+/g, " ");
  return flat.length > 100 ? flat.slice(0, 100) + "..." : flat;
}

export function notServed(kind: string, text: string, sqlState = "0A000"): ColdReadError {
  return new ColdReadError(
    `pg-offload: the cold reader does not serve ${kind}: ${excerpt(text)}`,
    sqlState,
  );
}

const WRITES: Record<string, string> = {
  InsertStmt: "INSERT",
  UpdateStmt: "UPDATE",
  DeleteStmt: "DELETE",
  MergeStmt: "MERGE",
  CopyStmt: "COPY",
};

/** A node type name as a statement kind: "CreateStmt" -> "CREATE", "DropStmt" -> "DROP". */
function kindName(type: string): string {
  return (
    WRITES[type] ??
    type
      .replace(/Stmt$/, "")
      .replace(/([a-z])([A-Z])/g, "$1 $2")
      .toUpperCase()
  );
}

/** Parses a statement text (one or more statements); refuses the whole text if any is refused. */
export async function parseStatements(text: string): Promise<Statement[]> {
  if (Buffer.byteLength(text, "utf8") > MAX_STATEMENT_BYTES) {
    throw new ColdReadError(
      `pg-offload: statement too long (more than ${MAX_STATEMENT_BYTES} bytes): ${excerpt(text)}`,
      "54000",
    );
  }
  if (text.trim() === "") return [];
  let tree: { stmts?: Array<{ stmt?: Node; stmt_location?: number; stmt_len?: number }> };
  try {
    tree = (await parse(text)) as typeof tree;
  } catch (error) {
    throw new ColdReadError(
      `pg-offload: cannot parse the statement (${(error as Error).message}): ${excerpt(text)}`,
      "42601",
      { cause: error },
    );
  }
  const bytes = Buffer.from(text, "utf8");
  return (tree.stmts ?? []).map((raw) => {
    // Locations are byte offsets into the UTF-8 text.
    const start = raw.stmt_location ?? 0;
    const own = bytes
      .subarray(start, raw.stmt_len ? start + raw.stmt_len : bytes.length)
      .toString("utf8")
      .trim();
    return classify(raw.stmt ?? {}, own);
  });
}

function only(node: Node): [string, Node] {
  const entries = Object.entries(node);
  if (entries.length !== 1) throw new Error("a parse tree node without exactly one type");
  return entries[0] as [string, Node];
}

function classify(stmt: Node, text: string): Statement {
  const [type, body] = only(stmt);
  switch (type) {
    case "VariableSetStmt":
      return setStatement(body, text);
    case "TransactionStmt":
      return transaction(body, text);
    case "DeclareCursorStmt": {
      const query = body.query as Node | undefined;
      const options = Number(body.options ?? 0);
      // CURSOR_OPT_HOLD: the cursor would outlive the transaction and its snapshot.
      if (options & 0x0020) throw notServed("DECLARE ... WITH HOLD", text);
      if (!query || !("SelectStmt" in query)) throw notServed("DECLARE of a non-SELECT", text);
      return { kind: "declare", text, cursor: String(body.portalname), select: query.SelectStmt };
    }
    case "FetchStmt":
      return fetch(body, text);
    case "ClosePortalStmt":
      return { kind: "close", text, cursor: body.portalname as string | undefined };
    case "DeallocateStmt":
      return {
        kind: "deallocate",
        text,
        name: body.isall ? undefined : (body.name as string | undefined),
      };
    case "ExplainStmt": {
      const query = body.query as Node | undefined;
      if (Array.isArray(body.options) && body.options.length > 0) {
        throw notServed("EXPLAIN with options", text);
      }
      if (!query || !("SelectStmt" in query)) throw notServed("EXPLAIN of a non-SELECT", text);
      return { kind: "explain", text, select: query.SelectStmt };
    }
    case "SelectStmt":
      return catalogQuery(body, text) ?? { kind: "select", text, select: body };
    default:
      throw notServed(kindName(type), text, type in WRITES ? "25006" : "0A000");
  }
}

function constantText(node: unknown): string | undefined {
  const constant = (node as Node | undefined)?.A_Const as Node | undefined;
  if (!constant) return undefined;
  const sval = (constant.sval as Node | undefined)?.sval;
  if (typeof sval === "string") return sval;
  if (constant.sval) return "";
  const ival = (constant.ival as Node | undefined)?.ival;
  if (constant.ival) return String(ival ?? 0);
  const fval = (constant.fval as Node | undefined)?.fval;
  if (typeof fval === "string") return fval;
  const boolval = (constant.boolval as Node | undefined)?.boolval;
  if (constant.boolval) return boolval ? "on" : "off";
  return undefined;
}

function setStatement(body: Node, text: string): Statement {
  const kind = String(body.kind);
  if (kind === "VAR_RESET_ALL") return { kind: "reset-all", text };
  if (kind === "VAR_SET_MULTI") {
    // SET TRANSACTION ..., SET SESSION CHARACTERISTICS AS TRANSACTION ...: isolation and
    // read-only modes, harmless for a reader; not SET TRANSACTION SNAPSHOT.
    if (body.name === "TRANSACTION" || body.name === "SESSION CHARACTERISTICS") {
      return { kind: "set-transaction", text };
    }
    throw notServed(`SET ${String(body.name)}`, text);
  }
  const name = String(body.name ?? "").toLowerCase();
  if (!SETTABLE.has(name)) {
    throw new ColdReadError(
      `pg-offload: the cold reader does not let a client set "${name}": ${excerpt(text)}`,
      "42501",
    );
  }
  const local = body.is_local === true;
  if (kind === "VAR_RESET" || kind === "VAR_SET_DEFAULT") {
    return { kind: "set", text, name, value: undefined, local };
  }
  if (kind !== "VAR_SET_VALUE") throw notServed(`SET ${name} (${kind})`, text);
  const args = Array.isArray(body.args) ? body.args : [];
  const values = args.map(constantText);
  if (values.length === 0 || values.some((v) => v === undefined)) {
    throw notServed(`SET ${name} to a value that is not a constant`, text);
  }
  const value = values.join(", ");
  if (name === "client_encoding" && !/^(utf-?8|unicode)$/i.test(value)) {
    throw new ColdReadError(
      `pg-offload: the cold reader speaks UTF8 only, client_encoding cannot be ${JSON.stringify(value)}`,
      "0A000",
    );
  }
  return { kind: "set", text, name, value, local };
}

function transaction(body: Node, text: string): Statement {
  const savepoint = body.savepoint_name as string | undefined;
  switch (body.kind) {
    case "TRANS_STMT_BEGIN":
      return { kind: "transaction", text, action: "begin" };
    case "TRANS_STMT_START":
      return { kind: "transaction", text, action: "start" };
    case "TRANS_STMT_COMMIT":
      if (body.chain) throw notServed("COMMIT AND CHAIN", text);
      return { kind: "transaction", text, action: "commit" };
    case "TRANS_STMT_ROLLBACK":
      if (body.chain) throw notServed("ROLLBACK AND CHAIN", text);
      return { kind: "transaction", text, action: "rollback" };
    case "TRANS_STMT_SAVEPOINT":
      return { kind: "transaction", text, action: "savepoint", savepoint };
    case "TRANS_STMT_RELEASE":
      return { kind: "transaction", text, action: "release", savepoint };
    case "TRANS_STMT_ROLLBACK_TO":
      return { kind: "transaction", text, action: "rollback-to", savepoint };
    default:
      throw notServed(String(body.kind).replace("TRANS_STMT_", "").replace("_", " "), text);
  }
}

function fetch(body: Node, text: string): Statement {
  const cursor = String(body.portalname ?? "");
  const move = body.ismove === true;
  const direction = String(body.direction ?? "FETCH_FORWARD");
  // libpg-query gives FETCH ALL (FETCH_ALL, LONG_MAX in the server) as INT_MAX.
  const howMany = Number(body.howMany ?? 0);
  const all = howMany >= 2147483647;
  if (direction === "FETCH_FORWARD" && howMany > 0) {
    return { kind: "fetch", text, cursor, count: all ? "all" : howMany, move };
  }
  // A rewind: MOVE BACKWARD ALL (postgres_fdw's rescan), or ABSOLUTE 0.
  if (
    (direction === "FETCH_BACKWARD" && all) ||
    (direction === "FETCH_ABSOLUTE" && howMany === 0)
  ) {
    return { kind: "rewind", text, cursor, move };
  }
  throw new ColdReadError(
    `pg-offload: cursors of the cold reader only go forward or back to their start: ${excerpt(text)}`,
    "55000",
  );
}

function names(list: unknown): string[] {
  return Array.isArray(list)
    ? list.map((n) => String(((n as Node).String as Node | undefined)?.sval ?? ""))
    : [];
}

/** 'schema.table' (quoted identifiers as deparseRelation writes them) of a regclass literal. */
export function relationOfLiteral(literal: string): RemoteRelationName | undefined {
  const parts: string[] = [];
  let rest = literal;
  for (;;) {
    let match = /^"((?:[^"]|"")*)"/.exec(rest);
    if (match) {
      parts.push(match[1]!.replaceAll('""', '"'));
    } else {
      match = /^[^".]+/.exec(rest);
      if (!match) return undefined;
      parts.push(match[0].toLowerCase());
    }
    rest = rest.slice(match[0].length);
    if (rest === "") break;
    if (!rest.startsWith(".")) return undefined;
    rest = rest.slice(1);
  }
  return parts.length === 2 ? { schema: parts[0]!, name: parts[1]! } : undefined;
}

function regclassLiteral(node: unknown): RemoteRelationName | undefined {
  const cast = (node as Node | undefined)?.TypeCast as Node | undefined;
  if (!cast) return undefined;
  const type = names((cast.typeName as Node | undefined)?.names);
  if (type[type.length - 1] !== "regclass") return undefined;
  const literal = constantText(cast.arg);
  return literal === undefined ? undefined : relationOfLiteral(literal);
}

/**
 * ANALYZE's questions about the remote relation: `SELECT pg_catalog.pg_relation_size('s.t'::
 * pg_catalog.regclass) / 8192` (pages), and (PostgreSQL 16 and later, when sampling)
 * `SELECT reltuples[, relkind] FROM pg_catalog.pg_class WHERE oid = 's.t'::pg_catalog.regclass`.
 */
function catalogQuery(body: Node, text: string): Statement | undefined {
  const targets = Array.isArray(body.targetList) ? (body.targetList as Node[]) : [];
  const from = Array.isArray(body.fromClause) ? (body.fromClause as Node[]) : [];
  const expression = (t: Node) => (t.ResTarget as Node | undefined)?.val as Node | undefined;
  if (from.length === 0 && targets.length === 1) {
    const division = expression(targets[0]!)?.A_Expr as Node | undefined;
    const call = (division?.lexpr as Node | undefined)?.FuncCall as Node | undefined;
    if (names(division?.name).join() === "/" && call) {
      const fn = names(call.funcname);
      const args = Array.isArray(call.args) ? call.args : [];
      const relation = regclassLiteral(args[0]);
      const blockSize = Number(constantText(division!.rexpr));
      if (
        fn[fn.length - 1] === "pg_relation_size" &&
        args.length === 1 &&
        relation &&
        blockSize > 0
      ) {
        return { kind: "relation-pages", text, relation, blockSize };
      }
    }
    return undefined;
  }
  const range = from.length === 1 ? (from[0]!.RangeVar as Node | undefined) : undefined;
  if (range?.relname !== "pg_class" || (range.schemaname ?? "pg_catalog") !== "pg_catalog") {
    return undefined;
  }
  const where = (body.whereClause as Node | undefined)?.A_Expr as Node | undefined;
  const left = names(((where?.lexpr as Node | undefined)?.ColumnRef as Node | undefined)?.fields);
  const relation = regclassLiteral(where?.rexpr);
  const columns = targets.map((t) =>
    names(((expression(t) as Node | undefined)?.ColumnRef as Node | undefined)?.fields).join("."),
  );
  const known = ["reltuples", "relkind", "relpages"];
  if (
    names(where?.name).join() !== "=" ||
    left.join() !== "oid" ||
    !relation ||
    !columns.every((c) => known.includes(c))
  ) {
    throw notServed("SELECT from pg_catalog.pg_class", text);
  }
  return { kind: "relation-info", text, relation, columns };
}

/** The highest $n a statement's parse tree uses (the parameters a Bind must supply). */
export function parameterCount(tree: unknown): number {
  let highest = 0;
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const item of value) walk(item);
    } else if (value && typeof value === "object") {
      const param = (value as Node).ParamRef as Node | undefined;
      if (param && typeof param.number === "number") highest = Math.max(highest, param.number);
      for (const child of Object.values(value)) walk(child);
    }
  };
  walk(tree);
  return highest;
}
