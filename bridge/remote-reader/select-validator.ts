/**
 * The allowlist a statement must pass before any SQL is built from it. The statement is hostile:
 * anyone with the endpoint's password can send any text. Every node kind and every field of
 * every node must be one this module knows; anything else is refused. What needs the catalog
 * (which functions and types exist and may run) is collected here and checked by
 * catalog-checks.ts.
 */
import { ColdReadError } from "./cold-data.ts";
import { names, nodeOf, type Fields } from "./parse-tree.ts";

export interface SimpleTarget {
  /** The column a plain column reference names; undefined for a constant NULL. */
  column: string | undefined;
  /** The alias it is qualified with, if any. */
  qualifier?: string;
}

export interface FunctionCall {
  name: string;
  args: number;
}

export interface ValidatedSelect {
  /** The SelectStmt's fields, as received. */
  select: Fields;
  /** Every RangeVar of the statement (fields objects, by identity), in FROM order. */
  relations: Fields[];
  /** Names of every column reference (its last field). */
  columns: Set<string>;
  /** Column names referenced anywhere but as a plain output column of the simple scan. */
  evaluatedColumns: Set<string>;
  /** The functions called (aggregates included): unqualified name and argument count. */
  functions: FunctionCall[];
  /** TypeName fields of every cast. */
  typeNames: Fields[];
  /** $n numbers referenced. */
  params: Set<number>;
  /**
   * Set for the streaming shape: one relation, output plain columns or NULL, optional WHERE,
   * nothing else.
   */
  simple: { targets: SimpleTarget[] } | undefined;
  /**
   * TABLESAMPLE of the simple scan (postgres_fdw's ANALYZE): the RangeTableSample node (replaced
   * by the relation's rows, sampled by the reader) and the method and percentage.
   */
  sample: { node: Fields; method: "bernoulli" | "system"; percent: number } | undefined;
}

const SELECT_FIELDS = new Set([
  "targetList",
  "fromClause",
  "whereClause",
  "groupClause",
  "havingClause",
  "sortClause",
  "limitCount",
  "limitOffset",
  "limitOption",
  "op",
  "distinctClause",
  "groupDistinct",
]);

const A_EXPR_KINDS = new Set([
  "AEXPR_OP",
  "AEXPR_OP_ANY",
  "AEXPR_OP_ALL",
  "AEXPR_DISTINCT",
  "AEXPR_NOT_DISTINCT",
  "AEXPR_NULLIF",
  "AEXPR_IN",
  "AEXPR_LIKE",
  "AEXPR_ILIKE",
  "AEXPR_SIMILAR",
  "AEXPR_BETWEEN",
  "AEXPR_NOT_BETWEEN",
  "AEXPR_BETWEEN_SYM",
  "AEXPR_NOT_BETWEEN_SYM",
]);

const BETWEEN_NAMES = new Set([
  "BETWEEN",
  "NOT BETWEEN",
  "BETWEEN SYMMETRIC",
  "NOT BETWEEN SYMMETRIC",
]);

/** Per expression node kind, the fields it may have (any other field is refused). */
const EXPRESSION_FIELDS: Record<string, ReadonlySet<string>> = {
  ColumnRef: new Set(["fields", "location"]),
  A_Const: new Set(["isnull", "ival", "fval", "sval", "boolval", "bsval", "location"]),
  ParamRef: new Set(["number", "location"]),
  TypeCast: new Set(["arg", "typeName", "location"]),
  A_Expr: new Set([
    "kind",
    "name",
    "lexpr",
    "rexpr",
    "location",
    "rexpr_list_start",
    "rexpr_list_end",
  ]),
  BoolExpr: new Set(["boolop", "args", "location"]),
  NullTest: new Set(["arg", "nulltesttype", "argisrow", "location"]),
  BooleanTest: new Set(["arg", "booltesttype", "location"]),
  A_ArrayExpr: new Set(["elements", "location", "list_start", "list_end"]),
  CaseExpr: new Set(["arg", "args", "defresult", "location"]),
  CaseWhen: new Set(["expr", "result", "location"]),
  CoalesceExpr: new Set(["args", "location"]),
  MinMaxExpr: new Set(["op", "args", "location"]),
  CollateClause: new Set(["arg", "collname", "location"]),
  FuncCall: new Set([
    "funcname",
    "args",
    "agg_order",
    "agg_filter",
    "agg_within_group",
    "agg_star",
    "agg_distinct",
    "func_variadic",
    "funcformat",
    "location",
  ]),
  A_Indirection: new Set(["arg", "indirection"]),
  List: new Set(["items"]),
};

const TYPE_NAME_FIELDS = new Set(["names", "typmods", "typemod", "arrayBounds", "location"]);

export function refuse(message: string, sqlState = "0A000"): never {
  throw new ColdReadError(message, sqlState);
}

/** Checks the statement's shape and collects what the catalog must vouch for. */
export function validateSelect(tree: unknown, paramCount: number): ValidatedSelect {
  let node = nodeOf(tree);
  if (node && node[0] === "RawStmt") node = nodeOf(node[1].stmt);
  if (!node) {
    // The SelectStmt's fields themselves.
    if (typeof tree === "object" && tree !== null && !Array.isArray(tree) && "op" in tree)
      node = ["SelectStmt", tree as Fields];
  }
  if (!node || node[0] !== "SelectStmt")
    refuse(`the remote reader answers SELECT statements only, not ${node?.[0] ?? "this"}`);
  const v = new Validator(paramCount);
  v.selectStmt(node[1], true);
  const select = node[1];
  if (v.sample && !simpleShape(select))
    refuse("TABLESAMPLE is supported only on a plain scan of one relation (ANALYZE's)");
  return {
    select,
    relations: v.relations,
    columns: v.columns,
    evaluatedColumns: v.evaluatedColumns,
    functions: v.functions,
    typeNames: v.typeNames,
    params: v.params,
    simple: simpleShape(select),
    sample: v.sample,
  };
}

function simpleShape(select: Fields): ValidatedSelect["simple"] {
  const from = select.fromClause as unknown[] | undefined;
  const kind = from?.length === 1 ? nodeOf(from[0])?.[0] : undefined;
  if (kind !== "RangeVar" && kind !== "RangeTableSample") return undefined;
  for (const key of Object.keys(select)) {
    if (!["targetList", "fromClause", "whereClause", "op", "limitOption"].includes(key))
      return undefined;
  }
  if (select.limitOption !== undefined && select.limitOption !== "LIMIT_OPTION_DEFAULT")
    return undefined;
  const targets: SimpleTarget[] = [];
  for (const t of (select.targetList as unknown[] | undefined) ?? []) {
    const res = nodeOf(t)![1];
    if (res.name !== undefined) return undefined;
    const val = nodeOf(res.val);
    if (val?.[0] === "ColumnRef") {
      const parts = names(val[1].fields)!;
      targets.push({
        column: parts[parts.length - 1]!,
        qualifier: parts.length === 2 ? parts[0] : undefined,
      });
    } else if (val?.[0] === "A_Const" && val[1].isnull === true) {
      targets.push({ column: undefined });
    } else return undefined;
  }
  if (targets.length === 0) return undefined;
  return { targets };
}

function constantNumber(c: Fields): string | undefined {
  const f = (c.fval as Fields | undefined)?.fval;
  if (typeof f === "string") return f;
  if (c.ival !== undefined) return String((c.ival as Fields).ival ?? 0);
  return undefined;
}

class Validator {
  relations: Fields[] = [];
  columns = new Set<string>();
  evaluatedColumns = new Set<string>();
  functions: FunctionCall[] = [];
  typeNames: Fields[] = [];
  params = new Set<number>();
  sample: ValidatedSelect["sample"];

  constructor(private readonly paramCount: number) {}

  selectStmt(s: Fields, top: boolean): void {
    for (const key of Object.keys(s)) {
      if (key === "withClause") refuse("WITH (common table expressions) is not supported");
      if (key === "intoClause") refuse("SELECT INTO is not supported");
      if (key === "lockingClause") refuse("FOR UPDATE/SHARE is not supported on cold rows");
      if (key === "windowClause") refuse("window clauses are not supported");
      if (key === "valuesLists") refuse("VALUES is not supported");
      if (key === "larg" || key === "rarg") refuse("UNION/INTERSECT/EXCEPT are not supported");
      if (!SELECT_FIELDS.has(key)) refuse(`SELECT with ${key} is not supported`);
    }
    if (s.op !== "SETOP_NONE") refuse("UNION/INTERSECT/EXCEPT are not supported");
    if (
      s.limitOption !== undefined &&
      s.limitOption !== "LIMIT_OPTION_DEFAULT" &&
      s.limitOption !== "LIMIT_OPTION_COUNT"
    )
      refuse("FETCH ... WITH TIES is not supported");
    const from = this.list(s.fromClause, "FROM");
    if (from.length === 0) refuse("a SELECT without FROM is not served by the remote reader");
    for (const item of from) this.fromItem(item);
    const targets = this.list(s.targetList, "the target list");
    if (targets.length === 0) refuse("an empty target list is not supported");
    for (const t of targets) {
      const res = this.node(t, "ResTarget");
      this.only(res, ["name", "val", "location"], "ResTarget");
      if (res.name !== undefined && typeof res.name !== "string") refuse("bad column alias");
      const val = nodeOf(res.val);
      if (top && val?.[0] === "ColumnRef") {
        // A plain output column: decoded only if the shape is not the simple scan.
        this.columnRef(val[1], false);
      } else this.expr(res.val);
    }
    if (s.whereClause !== undefined) this.expr(s.whereClause);
    for (const g of this.list(s.groupClause, "GROUP BY")) this.expr(g);
    if (s.groupDistinct !== undefined && s.groupDistinct !== false) refuse("GROUP BY DISTINCT");
    if (s.havingClause !== undefined) this.expr(s.havingClause);
    for (const d of this.list(s.distinctClause, "DISTINCT")) {
      // Plain DISTINCT is a list of one empty node; DISTINCT ON lists expressions.
      if (typeof d === "object" && d !== null && Object.keys(d).length === 0) continue;
      this.expr(d);
    }
    for (const sb of this.list(s.sortClause, "ORDER BY")) this.sortBy(sb);
    if (s.limitCount !== undefined) this.expr(s.limitCount);
    if (s.limitOffset !== undefined) this.expr(s.limitOffset);
    if (top) {
      // Plain output columns of anything but the simple scan are evaluated too.
      const simple = simpleShape(s);
      if (!simple) {
        for (const t of targets) {
          const val = nodeOf(nodeOf(t)![1].val);
          if (val?.[0] === "ColumnRef") this.columnRef(val[1], true);
        }
      }
    }
  }

  private fromItem(item: unknown): void {
    const node = nodeOf(item);
    switch (node?.[0]) {
      case "RangeVar": {
        const rv = node[1];
        this.only(
          rv,
          ["schemaname", "relname", "inh", "relpersistence", "alias", "location"],
          "a relation",
        );
        if (typeof rv.relname !== "string" || typeof rv.schemaname !== "string")
          refuse("a relation must be named schema.table");
        if (rv.relpersistence !== "p") refuse("bad relation");
        if (rv.alias !== undefined) {
          const alias = rv.alias as Fields;
          this.only(alias, ["aliasname"], "a relation's alias");
          if (typeof alias.aliasname !== "string") refuse("bad alias");
        }
        this.relations.push(rv);
        return;
      }
      case "JoinExpr": {
        const j = node[1];
        this.only(j, ["jointype", "larg", "rarg", "quals", "isNatural"], "a join");
        if (j.isNatural) refuse("NATURAL joins are not supported");
        if (!["JOIN_INNER", "JOIN_LEFT", "JOIN_RIGHT", "JOIN_FULL"].includes(String(j.jointype)))
          refuse(`join type ${String(j.jointype)} is not supported`);
        this.fromItem(j.larg);
        this.fromItem(j.rarg);
        if (j.quals !== undefined) this.expr(j.quals);
        return;
      }
      case "RangeTableSample": {
        const t = node[1];
        this.only(t, ["relation", "method", "args", "location"], "TABLESAMPLE");
        const method = names(t.method);
        const args = this.list(t.args, "TABLESAMPLE arguments");
        const arg = nodeOf(args[0]);
        const text = arg?.[0] === "A_Const" ? constantNumber(arg[1]) : undefined;
        const percent = text === undefined ? NaN : Number(text);
        if (
          !method ||
          method.length !== 1 ||
          (method[0] !== "bernoulli" && method[0] !== "system") ||
          args.length !== 1 ||
          !(percent >= 0 && percent <= 100)
        )
          refuse(
            "only TABLESAMPLE BERNOULLI(p) or SYSTEM(p) with a constant percentage is supported",
          );
        if (this.sample) refuse("TABLESAMPLE may appear once");
        this.sample = { node: t, method: method[0] as "bernoulli" | "system", percent };
        const rel = nodeOf(t.relation);
        if (rel?.[0] !== "RangeVar") refuse("TABLESAMPLE of something other than a relation");
        this.fromItem(t.relation);
        return;
      }
      case "RangeSubselect": {
        const r = node[1];
        this.only(r, ["subquery", "alias"], "a subquery in FROM");
        const alias = r.alias as Fields | undefined;
        if (!alias || typeof alias.aliasname !== "string")
          refuse("a subquery in FROM needs an alias");
        this.only(alias, ["aliasname", "colnames"], "a subquery's alias");
        if (alias.colnames !== undefined && !names(alias.colnames)) refuse("bad column aliases");
        const sub = nodeOf(r.subquery);
        if (!sub || sub[0] !== "SelectStmt") refuse("a subquery in FROM must be a SELECT");
        this.selectStmt(sub[1], false);
        return;
      }
      default:
        refuse(
          `${node?.[0] ?? "this"} in FROM is not supported (only schema.table, joins and subqueries)`,
        );
    }
  }

  private sortBy(item: unknown): void {
    const sb = this.node(item, "SortBy");
    this.only(sb, ["node", "sortby_dir", "sortby_nulls", "useOp", "location"], "ORDER BY");
    if (sb.useOp !== undefined) this.operatorName(sb.useOp);
    this.expr(sb.node);
  }

  private columnRef(f: Fields, evaluated: boolean): void {
    this.only(f, ["fields", "location"], "a column reference");
    const parts = names(f.fields);
    if (!parts) refuse("only plain column references (alias.column or column) are supported");
    if (parts.length < 1 || parts.length > 2)
      refuse("a column reference must be column or alias.column");
    const column = parts[parts.length - 1]!;
    this.columns.add(column);
    if (evaluated) this.evaluatedColumns.add(column);
  }

  private operatorName(value: unknown): void {
    const parts = names(value);
    if (!parts || parts.length < 1 || parts.length > 2) refuse("bad operator name");
    if (parts.length === 2 && parts[0] !== "pg_catalog")
      refuse(`operators of schema ${parts[0]} are not allowed, only pg_catalog's`, "42501");
    if (!/^[-+*/<>=~!@#%^&|`?]+$/.test(parts[parts.length - 1]!)) refuse("bad operator name");
  }

  expr(value: unknown): void {
    const node = nodeOf(value);
    if (!node) refuse("malformed expression");
    const [kind, f] = node;
    if (kind === "SubLink") refuse("subqueries in expressions are not supported");
    if (kind === "RowExpr") refuse("ROW expressions are not supported");
    if (kind === "SQLValueFunction")
      refuse("CURRENT_* functions are not allowed (not immutable)", "42501");
    const allowed = EXPRESSION_FIELDS[kind];
    if (!allowed) refuse(`expressions of kind ${kind} are not supported`);
    this.only(f, [...allowed], kind);
    switch (kind) {
      case "ColumnRef":
        return this.columnRef(f, true);
      case "A_Const":
        return;
      case "ParamRef": {
        const n = f.number;
        if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > this.paramCount)
          refuse(`parameter $${String(n)} is not bound`, "08P01");
        this.params.add(n);
        return;
      }
      case "TypeCast":
        this.typeName(f.typeName);
        return this.expr(f.arg);
      case "A_Expr": {
        if (!A_EXPR_KINDS.has(String(f.kind)))
          refuse(`operator kind ${String(f.kind)} is not supported`);
        if (String(f.kind).includes("BETWEEN")) {
          const n = names(f.name);
          if (!n || n.length !== 1 || !BETWEEN_NAMES.has(n[0]!)) refuse("bad BETWEEN");
        } else this.operatorName(f.name);
        if (f.lexpr !== undefined) this.expr(f.lexpr);
        if (f.rexpr !== undefined) this.expr(f.rexpr);
        return;
      }
      case "BoolExpr":
        if (!["AND_EXPR", "OR_EXPR", "NOT_EXPR"].includes(String(f.boolop))) refuse("bad boolean");
        for (const a of this.list(f.args, "arguments")) this.expr(a);
        return;
      case "NullTest":
        if (f.argisrow) refuse("row IS NULL is not supported");
        return this.expr(f.arg);
      case "BooleanTest":
        return this.expr(f.arg);
      case "A_ArrayExpr":
        for (const e of this.list(f.elements, "array elements")) this.expr(e);
        return;
      case "CaseExpr":
        if (f.arg !== undefined) this.expr(f.arg);
        for (const w of this.list(f.args, "WHEN")) this.expr(w);
        if (f.defresult !== undefined) this.expr(f.defresult);
        return;
      case "CaseWhen":
        this.expr(f.expr);
        return this.expr(f.result);
      case "CoalesceExpr":
      case "MinMaxExpr":
        for (const a of this.list(f.args, "arguments")) this.expr(a);
        return;
      case "CollateClause":
        if (!names(f.collname)) refuse("bad collation name");
        return this.expr(f.arg);
      case "FuncCall":
        return this.funcCall(f);
      case "A_Indirection":
        this.expr(f.arg);
        for (const ind of this.list(f.indirection, "subscripts")) {
          const i = this.node(ind, "A_Indices");
          this.only(i, ["is_slice", "lidx", "uidx"], "a subscript");
          if (i.lidx !== undefined) this.expr(i.lidx);
          if (i.uidx !== undefined) this.expr(i.uidx);
        }
        return;
      case "List":
        for (const a of this.list(f.items, "a list")) this.expr(a);
        return;
    }
  }

  private funcCall(f: Fields): void {
    const parts = names(f.funcname);
    if (!parts || parts.length < 1 || parts.length > 2) refuse("bad function name");
    if (parts.length === 2 && parts[0] !== "pg_catalog")
      refuse(`functions of schema ${parts[0]} are not allowed, only pg_catalog's`, "42501");
    if (f.funcformat !== "COERCE_EXPLICIT_CALL" && f.funcformat !== "COERCE_SQL_SYNTAX")
      refuse("bad function call");
    const args = this.list(f.args, "arguments");
    this.functions.push({ name: parts[parts.length - 1]!, args: args.length });
    for (const a of args) this.expr(a);
    for (const sb of this.list(f.agg_order, "an aggregate's ORDER BY")) this.sortBy(sb);
    if (f.agg_filter !== undefined) this.expr(f.agg_filter);
  }

  private typeName(value: unknown): void {
    if (typeof value !== "object" || value === null) refuse("bad type name");
    const t = value as Fields;
    this.only(t, [...TYPE_NAME_FIELDS], "a type name");
    const parts = names(t.names);
    if (!parts || parts.length < 1 || parts.length > 2) refuse("bad type name");
    for (const m of this.list(t.typmods, "type modifiers")) {
      const c = nodeOf(m);
      if (!c || c[0] !== "A_Const") refuse("type modifiers must be constants");
      this.expr(m);
    }
    for (const b of this.list(t.arrayBounds, "array bounds")) {
      const n = nodeOf(b);
      if (!n || n[0] !== "Integer") refuse("bad array bounds");
    }
    this.typeNames.push(t);
  }

  private list(value: unknown, what: string): unknown[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) refuse(`malformed ${what}`);
    return value;
  }

  private node(value: unknown, kind: string): Fields {
    const node = nodeOf(value);
    if (!node || node[0] !== kind) refuse(`expected ${kind}, got ${node?.[0] ?? "something else"}`);
    return node[1];
  }

  private only(f: Fields, allowed: readonly string[], what: string): void {
    for (const key of Object.keys(f))
      if (!allowed.includes(key)) refuse(`${what} with ${key} is not supported`);
  }
}
