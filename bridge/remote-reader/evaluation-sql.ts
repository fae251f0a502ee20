/**
 * The SQL that evaluates a validated statement over rows given as text arrays: every relation
 * the statement names becomes a subquery that decodes the columns from `unnest($k::text[], ...)`
 * as the table's types and collations, under the relation's alias; everything else is the
 * statement's own (validated) tree. The text is made by pgsql-deparser and run only if it parses
 * back to the very tree built here.
 */
import { ColdReadError } from "./cold-data.ts";
import type { SegmentShape } from "./segment-source.ts";
import type { ValidatedSelect } from "./select-validator.ts";
import {
  deparseChecked,
  DeparseMismatch,
  nodeOf,
  parseSelect,
  quoteIdent,
  type Fields,
  type Node,
} from "./parse-tree.ts";

/** The name of the row-number column each relation's subquery adds. */
export const ROW_NUMBER_COLUMN = "pg_offload_row#";

export interface RelationInput {
  shape: SegmentShape;
  alias: string;
  /** Indexes (into shape.columns) of the columns decoded, in the order of their arrays. */
  arrays: number[];
  /** Which of `arrays` are decoded (the others only drive the row count). */
  decoded: boolean[];
  /** $n of the first array. */
  firstParam: number;
}

export interface EvaluationSql {
  sql: string;
  relations: RelationInput[];
  /** For the simple scan: the output columns evaluated (null: filled from the stored text). */
  simpleColumns?: Array<number | null | "null">;
}

/** The decoded (or row-count-only) columns of each relation, refusing undecodable references. */
export function relationInputs(
  v: ValidatedSelect,
  shapes: SegmentShape[],
  paramCount: number,
): RelationInput[] {
  let next = paramCount + 1;
  return v.relations.map((rv, r) => {
    const shape = shapes[r]!;
    const alias =
      ((rv.alias as Fields | undefined)?.aliasname as string | undefined) ?? String(rv.relname);
    const arrays: number[] = [];
    const decoded: boolean[] = [];
    shape.columns.forEach((c, i) => {
      if (!v.columns.has(c.name)) return;
      if (!c.decodable) {
        if (v.evaluatedColumns.has(c.name))
          throw new ColdReadError(
            `column ${c.name} of ${shape.table} can only be read as stored: its type may run the table owner's code when decoded, so no condition or expression may use it`,
            "0A000",
          );
        return;
      }
      arrays.push(i);
      decoded.push(true);
    });
    if (arrays.length === 0 && shape.columns.length > 0) {
      arrays.push(0);
      decoded.push(false);
    }
    const input = { shape, alias, arrays, decoded, firstParam: next };
    next += arrays.length;
    return input;
  });
}

/** The subquery standing for one relation: `(SELECT decoded columns, row number FROM unnest(...)) alias`. */
async function typedSubquery(input: RelationInput): Promise<Node> {
  const outputs: string[] = [];
  const unnestArgs: string[] = [];
  const names: string[] = [];
  input.arrays.forEach((col, k) => {
    const c = input.shape.columns[col]!;
    unnestArgs.push(`pg_catalog.unnest($${input.firstParam + k}::pg_catalog.text[])`);
    names.push(`c${k}`);
    if (input.decoded[k]) {
      const collate = c.collation === null ? "" : ` COLLATE ${c.collation}`;
      outputs.push(`(r.c${k}::${c.decodeAs})${collate} AS ${quoteIdent(c.name)}`);
    }
  });
  outputs.push(`r.ord AS ${quoteIdent(ROW_NUMBER_COLUMN)}`);
  const sql =
    `SELECT * FROM (SELECT ${outputs.join(", ")} FROM ROWS FROM (${unnestArgs.join(", ")})` +
    ` WITH ORDINALITY AS r(${[...names, "ord"].join(", ")})) AS ${quoteIdent(input.alias)}`;
  const parsed = await parseSelect(sql);
  const from = parsed.SelectStmt!.fromClause as unknown[];
  return from[0] as Node;
}

/** A copy of `value` with every node for which `replace` answers replaced. */
function rebuild(value: unknown, replace: (fields: Fields) => unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => rebuild(v, replace));
  if (typeof value !== "object" || value === null) return value;
  const node = nodeOf(value);
  if (node) {
    const replaced = replace(node[1]);
    if (replaced !== undefined) return replaced;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = rebuild(v, replace);
  return out;
}

export async function evaluationSql(
  v: ValidatedSelect,
  inputs: RelationInput[],
): Promise<EvaluationSql> {
  const subqueries = new Map<Fields, unknown>();
  for (let r = 0; r < v.relations.length; r++)
    subqueries.set(v.relations[r]!, await typedSubquery(inputs[r]!));
  // The sampled relation's rows are sampled by the reader: the evaluation reads them all.
  if (v.sample) subqueries.set(v.sample.node, subqueries.get(v.relations[0]!));
  let select = rebuild(v.select, (f) => subqueries.get(f)) as Fields;
  let simpleColumns: EvaluationSql["simpleColumns"];
  if (v.simple) {
    // Output the decoded columns and the row number; undecodable ones come from the stored text.
    const input = inputs[0]!;
    const template = await parseSelect(
      `SELECT NULL, ${quoteIdent(input.alias)}.${quoteIdent(ROW_NUMBER_COLUMN)} FROM x`,
    );
    const [nullTarget, rowTarget] = template.SelectStmt!.targetList as unknown[];
    const targets = select.targetList as unknown[];
    simpleColumns = [];
    const newTargets: unknown[] = [];
    v.simple.targets.forEach((t, i) => {
      if (t.column === undefined) {
        simpleColumns!.push("null");
        newTargets.push(targets[i]);
        return;
      }
      const col = input.shape.columns.findIndex((c) => c.name === t.column);
      if (col >= 0 && !input.shape.columns[col]!.decodable) {
        if (t.qualifier !== undefined && t.qualifier !== input.alias)
          throw new ColdReadError(`missing FROM-clause entry for table "${t.qualifier}"`, "42P01");
        simpleColumns!.push(col);
        newTargets.push(nullTarget);
      } else {
        simpleColumns!.push(null);
        newTargets.push(targets[i]);
      }
    });
    newTargets.push(rowTarget);
    select = { ...select, targetList: newTargets };
  }
  try {
    const sql = await deparseChecked({ SelectStmt: select });
    return { sql, relations: inputs, simpleColumns };
  } catch (error) {
    if (error instanceof DeparseMismatch)
      throw new ColdReadError(
        "the statement could not be rebuilt exactly (the deparser prints it differently); it is not run",
        "0A000",
        { cause: error },
      );
    throw error;
  }
}
