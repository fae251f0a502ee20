/**
 * Helpers over libpg-query's JSON parse tree: a node is `{ Kind: { ...fields } }`.
 */
import { parse } from "libpg-query";
import { deparse } from "pgsql-deparser";

export type Fields = Record<string, unknown>;
export type Node = Record<string, Fields>;

/** The node's kind and fields, or undefined when the value is not a node. */
export function nodeOf(value: unknown): [string, Fields] | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.length !== 1) return undefined;
  const kind = keys[0]!;
  const fields = (value as Record<string, unknown>)[kind];
  if (typeof fields !== "object" || fields === null || Array.isArray(fields)) return undefined;
  return [kind, fields as Fields];
}

/** The strings of a list of String nodes (names), or undefined when it is anything else. */
export function names(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const out: string[] = [];
  for (const item of value) {
    const node = nodeOf(item);
    if (!node || node[0] !== "String" || typeof node[1].sval !== "string") return undefined;
    out.push(node[1].sval);
  }
  return out;
}

/** Fields that hold positions in the statement's text, not meaning. */
const LOCATION_FIELDS = new Set([
  "location",
  "stmt_location",
  "stmt_len",
  "rexpr_list_start",
  "rexpr_list_end",
  "list_start",
  "list_end",
]);

/** A deep copy without `location` fields (positions in the text differ after deparsing). */
export function withoutLocations(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutLocations);
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (LOCATION_FIELDS.has(k)) continue;
      out[k] = withoutLocations(v);
    }
    return out;
  }
  return value;
}

/**
 * Nested ANDs (ORs) as one AND (OR): the parser flattens some nestings and not others, and
 * neither changes what the expression means.
 */
function flattenBool(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(flattenBool);
  if (typeof value !== "object" || value === null) return value;
  const node = nodeOf(value);
  if (node && node[0] === "BoolExpr" && node[1].boolop !== "NOT_EXPR") {
    const op = node[1].boolop;
    const args: unknown[] = [];
    for (const a of (node[1].args as unknown[]).map(flattenBool)) {
      const inner = nodeOf(a);
      if (inner && inner[0] === "BoolExpr" && inner[1].boolop === op)
        args.push(...(inner[1].args as unknown[]));
      else args.push(a);
    }
    return { BoolExpr: { ...node[1], args } };
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = flattenBool(v);
  return out;
}

/**
 * Type names without a leading pg_catalog: the deparser prints `bit varying` as `varbit`, which
 * parses as a bare name. The evaluation runs with search_path = pg_catalog, pg_temp, where a bare
 * type name means pg_catalog's type, so both spell the same type.
 */
function bareCatalogTypes(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(bareCatalogTypes);
  if (typeof value !== "object" || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    // A TypeName is wrapped ({TypeName: ...}) in lists, bare under TypeCast's typeName.
    out[k] = k === "TypeName" || k === "typeName" ? bareTypeName(v) : bareCatalogTypes(v);
  }
  return out;
}

function bareTypeName(typeName: unknown): unknown {
  const fields = bareCatalogTypes(typeName) as Fields;
  const parts = fields.names as unknown[] | undefined;
  const first = parts && nodeOf(parts[0]);
  if (!parts || parts.length < 2 || first?.[0] !== "String" || first[1].sval !== "pg_catalog") {
    return fields;
  }
  return { ...fields, names: parts.slice(1) };
}

/** JSON text with object keys sorted: equal for equal trees whatever order keys were added in. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

export function clone<T>(value: T): T {
  return structuredClone(value);
}

/** Parses text that must be exactly one SELECT; returns its SelectStmt node. */
export async function parseSelect(sql: string): Promise<Node> {
  const result = (await parse(sql)) as { stmts?: Array<{ stmt?: unknown }> };
  const stmts = result.stmts ?? [];
  if (stmts.length !== 1) throw new Error("expected exactly one statement");
  const node = nodeOf(stmts[0]!.stmt);
  if (!node || node[0] !== "SelectStmt") throw new Error("expected a SELECT");
  return { SelectStmt: node[1] };
}

/**
 * SQL text for a SelectStmt tree, checked: the text parses back to the very same tree (but for
 * locations). A tree the deparser would print differently is never run.
 */
export async function deparseChecked(select: Node): Promise<string> {
  let sql: string;
  try {
    sql = await deparse({ version: 180004, stmts: [{ stmt: select }] } as never, { pretty: false });
  } catch (error) {
    throw new DeparseMismatch("", { cause: error });
  }
  return checkedText(sql, select);
}

/**
 * `sql` if it parses to the very same SelectStmt tree (but for locations, nested AND/OR and
 * pg_catalog type qualifiers); otherwise throws DeparseMismatch.
 */
export async function checkedText(sql: string, select: Node): Promise<string> {
  let reparsed: Node;
  try {
    reparsed = await parseSelect(sql);
  } catch (error) {
    throw new DeparseMismatch(sql, { cause: error });
  }
  const same = (tree: Node) => canonical(bareCatalogTypes(flattenBool(withoutLocations(tree))));
  if (same(reparsed) !== same(select)) throw new DeparseMismatch(sql);
  return sql;
}

export class DeparseMismatch extends Error {
  constructor(
    readonly sql: string,
    options?: ErrorOptions,
  ) {
    super("the statement text does not parse back to the validated tree", options);
  }
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}
