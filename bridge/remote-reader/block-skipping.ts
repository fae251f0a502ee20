/**
 * Which chunks can hold rows matching a statement's WHERE, from their block statistics. Top-level
 * AND conjuncts `column op constant` (op among = < <= > >=, either side), `column = ANY(constant
 * array)`, `column BETWEEN constant AND constant`, `column IS [NOT] NULL` exclude the chunks
 * PostgreSQL itself says cannot match: one query over every chunk's bounds, typed as the column
 * (its decodeAs type and collation), compared with the condition's own operator (for `=`, `<=`
 * and `>=` of the same operator class). Any other conjunct, and a column without bounds in a
 * chunk, excludes nothing.
 *
 * When every conjunct has such a test, the same query tells the chunks whose statistics prove
 * that all their rows match (no NULL in the column, bounds inside the condition): the simple scan
 * returns their stored text without evaluating them.
 */
import type pg from "pg";
import type { SegmentShape } from "./segment-source.ts";
import type { ValidatedSelect } from "./select-validator.ts";
import { deparseChecked, names, nodeOf, parseSelect, type Node } from "./parse-tree.ts";

interface ColumnSide {
  column: number;
}

/** The conjuncts of a WHERE (nested ANDs flattened). */
function conjuncts(where: unknown): unknown[] {
  const node = nodeOf(where);
  if (node?.[0] === "BoolExpr" && node[1].boolop === "AND_EXPR")
    return (node[1].args as unknown[]).flatMap(conjuncts);
  return where === undefined ? [] : [where];
}

export class SkipPlanner {
  /** Column indexes whose statistics the query reads. */
  readonly used = new Set<number>();
  private readonly tests: Node[] = [];
  /** Per test, when the chunk's rows all satisfy its conjunct (undefined: cannot tell). */
  private readonly wholes: Array<Node | undefined> = [];
  /** False when some conjunct has no test: then no chunk is proven wholly matching. */
  private allCovered = true;

  private constructor(
    private readonly shape: SegmentShape,
    private readonly alias: string,
    private readonly params: Array<string | null>,
  ) {}

  /** The planner for a single-relation statement, or undefined when no conjunct can skip. */
  static async plan(
    v: ValidatedSelect,
    shape: SegmentShape,
    alias: string,
    params: Array<string | null>,
  ): Promise<SkipPlanner | undefined> {
    if (v.relations.length !== 1) return undefined;
    const planner = new SkipPlanner(shape, alias, params);
    for (const c of conjuncts(v.select.whereClause))
      if (!(await planner.add(c))) planner.allCovered = false;
    return planner.tests.length > 0 ? planner : undefined;
  }

  /** The column a ColumnRef of this relation names (decodable only), or undefined. */
  private columnOf(value: unknown): ColumnSide | undefined {
    const node = nodeOf(value);
    if (node?.[0] !== "ColumnRef") return undefined;
    const parts = names(node[1].fields);
    if (!parts || parts.length > 2 || (parts.length === 2 && parts[0] !== this.alias))
      return undefined;
    const column = this.shape.columns.findIndex((c) => c.name === parts[parts.length - 1]);
    if (column < 0 || !this.shape.columns[column]!.decodable) return undefined;
    return { column };
  }

  /** A constant (literal or parameter, possibly cast) with parameters replaced by literals. */
  private constant(value: unknown): unknown {
    const node = nodeOf(value);
    if (!node) return undefined;
    if (node[0] === "A_Const") return value;
    if (node[0] === "ParamRef") {
      const v = this.params[(node[1].number as number) - 1];
      if (v === undefined) return undefined;
      if (v === null) return { A_Const: { isnull: true, location: -1 } };
      // The parser's JSON leaves out empty strings.
      return { A_Const: { sval: v === "" ? {} : { sval: v }, location: -1 } };
    }
    if (node[0] === "TypeCast") {
      const arg = this.constant(node[1].arg);
      return arg === undefined ? undefined : { TypeCast: { ...node[1], arg } };
    }
    return undefined;
  }

  private async typedBound(column: number, which: "mn" | "mx"): Promise<unknown> {
    const c = this.shape.columns[column]!;
    const collate = c.collation === null ? "" : ` COLLATE ${c.collation}`;
    const parsed = await parseSelect(`SELECT (b.${which}_${column}::${c.decodeAs})${collate}`);
    return nodeOf((parsed.SelectStmt!.targetList as unknown[])[0])![1].val;
  }

  /** Adds the conjunct's test; false when it has none. */
  private async add(conjunct: unknown): Promise<boolean> {
    const node = nodeOf(conjunct);
    if (!node) return false;
    const [kind, f] = node;
    if (kind === "NullTest") {
      const side = this.columnOf(f.arg);
      if (!side) return false;
      this.used.add(side.column);
      const n = `b.nl_${side.column}`;
      const isNull = f.nulltesttype === "IS_NULL";
      this.tests.push(
        await expression(`(${n} IS NULL OR ${isNull ? `${n} > 0` : `${n} < b."rows"`})`),
      );
      this.wholes.push(await expression(isNull ? `${n} = b."rows"` : `${n} = 0`));
      return true;
    }
    if (kind !== "A_Expr") return false;
    const op = names(f.name);
    if (!op) return false;
    const opName = op[op.length - 1]!;
    const qualify = (name: string) =>
      op.length === 2
        ? [{ String: { sval: "pg_catalog" } }, { String: { sval: name } }]
        : [{ String: { sval: name } }];
    const opExpr = (name: string, l: unknown, r: unknown, k = "AEXPR_OP"): Node => ({
      A_Expr: { kind: k, name: qualify(name), lexpr: l, rexpr: r, location: -1 },
    });
    const and = (...args: unknown[]): Node => ({
      BoolExpr: { boolop: "AND_EXPR", args, location: -1 },
    });
    let column: number | undefined;
    let test: Node | undefined;
    let whole: Node | undefined;
    if (f.kind === "AEXPR_OP" && ["=", "<", "<=", ">", ">="].includes(opName)) {
      const left = this.columnOf(f.lexpr);
      const right = this.columnOf(f.rexpr);
      if (left && !right) {
        const c = this.constant(f.rexpr);
        if (c === undefined) return false;
        column = left.column;
        const mn = await this.typedBound(column, "mn");
        const mx = await this.typedBound(column, "mx");
        test =
          opName === "="
            ? and(opExpr("<=", mn, c), opExpr(">=", mx, c))
            : opName.startsWith("<")
              ? opExpr(opName, mn, c)
              : opExpr(opName, mx, c);
        whole =
          opName === "="
            ? and(opExpr("=", mn, c), opExpr("=", mx, c))
            : opName.startsWith("<")
              ? opExpr(opName, mx, c)
              : opExpr(opName, mn, c);
      } else if (right && !left) {
        const c = this.constant(f.lexpr);
        if (c === undefined) return false;
        column = right.column;
        const mn = await this.typedBound(column, "mn");
        const mx = await this.typedBound(column, "mx");
        test =
          opName === "="
            ? and(opExpr("<=", c, mx), opExpr(">=", c, mn))
            : opName.startsWith("<")
              ? opExpr(opName, c, mx)
              : opExpr(opName, c, mn);
        whole =
          opName === "="
            ? and(opExpr("=", c, mn), opExpr("=", c, mx))
            : opName.startsWith("<")
              ? opExpr(opName, c, mn)
              : opExpr(opName, c, mx);
      }
    } else if (f.kind === "AEXPR_OP_ANY" && opName === "=") {
      const left = this.columnOf(f.lexpr);
      const c = this.constant(f.rexpr);
      if (!left || c === undefined) return false;
      column = left.column;
      const mn = await this.typedBound(column, "mn");
      const mx = await this.typedBound(column, "mx");
      // Some element e of the array with min <= e and max >= e.
      const exists = await expression(
        "EXISTS (SELECT FROM pg_catalog.unnest(NULL) AS e(v) WHERE e.v IS NULL)",
      );
      const sub = nodeOf(nodeOf(exists)![1].subselect)![1];
      const fn = nodeOf((sub.fromClause as unknown[])[0])![1];
      const items = nodeOf((fn.functions as unknown[])[0])![1].items as unknown[];
      nodeOf(items[0])![1].args = [c];
      const element = nodeOf(sub.whereClause)![1].arg;
      sub.whereClause = and(opExpr("<=", mn, element), opExpr(">=", mx, element));
      test = exists;
    } else if (f.kind === "AEXPR_BETWEEN") {
      const left = this.columnOf(f.lexpr);
      const list = nodeOf(f.rexpr);
      if (!left || list?.[0] !== "List") return false;
      const [lo, hi] = (list[1].items as unknown[]).map((x) => this.constant(x));
      if (lo === undefined || hi === undefined) return false;
      column = left.column;
      const mn = await this.typedBound(column, "mn");
      const mx = await this.typedBound(column, "mx");
      // BETWEEN is `>= lo AND <= hi`: PostgreSQL's grammar names these very operators.
      test = and(opExpr(">=", mx, lo), opExpr("<=", mn, hi));
      whole = and(opExpr(">=", mn, lo), opExpr("<=", mx, hi));
    }
    if (column === undefined || test === undefined) return false;
    this.used.add(column);
    const guard = await expression(
      `(b.mn_${column} IS NULL OR TRUE) AND (b.nl_${column} IS NULL OR b.nl_${column} < b."rows")`,
    );
    // The TRUE placeholder becomes the test.
    const g = nodeOf(guard)![1];
    const first = nodeOf((g.args as unknown[])[0])![1];
    (first.args as unknown[])[1] = test;
    this.tests.push(guard);
    // Every row matches when none is NULL and the bounds satisfy the condition.
    this.wholes.push(
      whole === undefined ? undefined : and(await expression(`b.nl_${column} = 0`), whole),
    );
    return true;
  }

  /**
   * The checked SQL selecting the seq of every chunk that may match, and whether the statistics
   * prove all its rows match; $1 is the chunks' JSON.
   */
  async sql(): Promise<string> {
    const defs = ["seq pg_catalog.int4", `"rows" pg_catalog.int8`];
    for (const c of [...this.used].sort((a, b) => a - b))
      defs.push(`mn_${c} pg_catalog.text`, `mx_${c} pg_catalog.text`, `nl_${c} pg_catalog.int8`);
    const base = await parseSelect(
      `SELECT b.seq, FALSE AS whole FROM pg_catalog.jsonb_to_recordset($1::pg_catalog.jsonb) AS b(${defs.join(", ")}) ORDER BY b.seq`,
    );
    const where: Node =
      this.tests.length === 1
        ? this.tests[0]!
        : { BoolExpr: { boolop: "AND_EXPR", args: this.tests, location: -1 } };
    const targets = base.SelectStmt!.targetList as unknown[];
    const proven = this.wholes.filter((w) => w !== undefined);
    if (this.allCovered && proven.length === this.tests.length) {
      const res = nodeOf(targets[1])![1];
      res.val =
        proven.length === 1
          ? proven[0]
          : { BoolExpr: { boolop: "AND_EXPR", args: proven, location: -1 } };
    }
    return deparseChecked({ SelectStmt: { ...base.SelectStmt!, whereClause: where } });
  }

  /** The statistics of every chunk, as the JSON the query reads. */
  chunksJson(): string {
    return JSON.stringify(
      this.shape.chunks.map((chunk) => {
        const row: Record<string, unknown> = { seq: chunk.seq, rows: chunk.rows };
        for (const c of this.used) {
          const name = this.shape.columns[c]!.name;
          const b = chunk.bounds?.[name];
          row[`mn_${c}`] = b?.[0] ?? null;
          row[`mx_${c}`] = b?.[1] ?? null;
          row[`nl_${c}`] = chunk.nulls?.[name] ?? null;
        }
        return row;
      }),
    );
  }

  /** The seqs of the chunks that may hold matching rows, and of those all rows of which match. */
  async candidates(client: pg.ClientBase): Promise<{ may: Set<number>; whole: Set<number> }> {
    const { rows } = await client.query<{ seq: number; whole: boolean | null }>(await this.sql(), [
      this.chunksJson(),
    ]);
    return {
      may: new Set(rows.map((r) => r.seq)),
      whole: new Set(rows.filter((r) => r.whole === true).map((r) => r.seq)),
    };
  }
}

async function expression(sql: string): Promise<Node> {
  const parsed = await parseSelect(`SELECT ${sql}`);
  return nodeOf((parsed.SelectStmt!.targetList as unknown[])[0])![1].val as Node;
}
