/**
 * The SQL that evaluates a validated statement over rows given as text arrays: every relation
 * the statement names becomes a subquery that decodes the columns from `unnest($k::text[], ...)`
 * as the table's types and collations, under the relation's alias; everything else is the
 * statement's own (validated) tree. The text is the statement's own text with those spans
 * replaced (statement-splice.ts), or else the tree printed by pgsql-deparser; either is run only
 * if it parses back to the very tree built here.
 */
import { ColdReadError } from "./cold-data.ts";
import type { SegmentColumn, SegmentShape } from "./segment-source.ts";
import type { ValidatedSelect } from "./select-validator.ts";
import {
  evaluationEdits,
  SourceText,
  type SpliceChanges,
  type StatementSource,
} from "./statement-splice.ts";
import {
  checkedText,
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
  /**
   * Indexes of the decodable columns the statement names, decoded or not: their types are the
   * casts it may use (catalog-checks.ts), whichever of them the evaluation decodes.
   */
  named: number[];
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
    const named: number[] = [];
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
      named.push(i);
      // Only a plain output column of the simple scan is not evaluated: it is returned as
      // stored (simpleTargets) unless its stored text could differ from PostgreSQL's output.
      if (!v.evaluatedColumns.has(c.name) && storedTextExact(c)) return;
      arrays.push(i);
      decoded.push(true);
    });
    if (arrays.length === 0 && shape.columns.length > 0) {
      arrays.push(0);
      decoded.push(false);
    }
    const input = { shape, alias, arrays, decoded, named, firstParam: next };
    next += arrays.length;
    return input;
  });
}

/** The text of one relation's subquery, without its alias: `(SELECT decoded columns, row number FROM unnest(...))`. */
function subqueryText(input: RelationInput): string {
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
  return (
    `(SELECT ${outputs.join(", ")} FROM ROWS FROM (${unnestArgs.join(", ")})` +
    ` WITH ORDINALITY AS r(${[...names, "ord"].join(", ")}))`
  );
}

/** The subquery node standing for one relation, under the relation's alias. */
async function typedSubquery(input: RelationInput): Promise<Node> {
  const sql = `SELECT * FROM ${subqueryText(input)} AS ${quoteIdent(input.alias)}`;
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

/** The statement as received, for splicing, and the type names of its Parse-typed parameters. */
export interface EvaluationSource extends StatementSource {
  paramTypes: Map<number, string>;
}

export async function evaluationSql(
  v: ValidatedSelect,
  inputs: RelationInput[],
  source?: EvaluationSource,
): Promise<EvaluationSql> {
  const subqueries = new Map<Fields, unknown>();
  for (let r = 0; r < v.relations.length; r++)
    subqueries.set(v.relations[r]!, await typedSubquery(inputs[r]!));
  // The sampled relation's rows are sampled by the reader: the evaluation reads them all.
  if (v.sample) subqueries.set(v.sample.node, subqueries.get(v.relations[0]!));
  let select = rebuild(v.select, (f) => subqueries.get(f)) as Fields;
  const changes: SpliceChanges = {
    relations: v.relations.map((rv, r) => {
      const alias = rv.alias === undefined ? ` AS ${quoteIdent(inputs[r]!.alias)}` : "";
      return subqueryText(inputs[r]!) + alias;
    }),
    paramTypes: source?.paramTypes ?? new Map(),
  };
  let simpleColumns: EvaluationSql["simpleColumns"];
  if (v.simple) {
    const simple = await simpleTargets(v, inputs[0]!, select);
    simpleColumns = simple.columns;
    select = { ...select, targetList: simple.targets };
    changes.nulled = simple.nulled;
    changes.appended = simple.rowNumber;
  }
  const spliced = source && (await splicedText(source, v, changes));
  const sql = await checkedSql({ SelectStmt: select }, spliced);
  return { sql, relations: inputs, simpleColumns };
}

interface SimpleTargets {
  columns: NonNullable<EvaluationSql["simpleColumns"]>;
  targets: unknown[];
  /** Indexes of the targets replaced by NULL. */
  nulled: number[];
  /** The text of the row-number target appended. */
  rowNumber: string;
}

/**
 * Whether a column's stored COPY text can be returned as is, without PostgreSQL.
 *
 * The chunks were written by the bridge's sessions (bridge/db.ts: DateStyle ISO, TimeZone UTC,
 * IntervalStyle postgres, extra_float_digits 1, bytea_output hex); postgres_fdw's session prints
 * with ISO, GMT, postgres, extra_float_digits 3. The local side reads each value with the type's
 * input function (and typmod), so a text that reads back to the same value is exact:
 * - timestamptz: UTC and GMT both print the offset +00 (an explicit offset is read as such);
 * - date, timestamp, time, timetz: ISO output does not depend on the zone;
 * - interval: the same IntervalStyle;
 * - float4/float8: any extra_float_digits > 0 prints the shortest exact text (the same text);
 * - bytea: hex, read by bytea's input whatever the local bytea_output;
 * - money depends on lc_monetary on both sides, and could differ: evaluated.
 * Everything else prints independently of these settings. Columns the stored text of which is
 * decodable=false are returned as stored in any case (they may not be decoded).
 */
export function storedTextExact(column: SegmentColumn): boolean {
  return !/\bmoney\b/.test(column.decodeAs);
}

/**
 * The simple scan outputs the evaluated columns and the row number; the others (undecodable, or
 * stored text exact: storedTextExact) come from the stored text of the rows that matched.
 */
async function simpleTargets(
  v: ValidatedSelect,
  input: RelationInput,
  select: Fields,
): Promise<SimpleTargets> {
  const rowNumber = `${quoteIdent(input.alias)}.${quoteIdent(ROW_NUMBER_COLUMN)}`;
  const template = await parseSelect(`SELECT NULL, ${rowNumber} FROM x`);
  const [nullTarget, rowTarget] = template.SelectStmt!.targetList as unknown[];
  const targets = select.targetList as unknown[];
  const out: SimpleTargets = { columns: [], targets: [], nulled: [], rowNumber };
  v.simple!.targets.forEach((t, i) => {
    const col = input.shape.columns.findIndex((c) => c.name === t.column);
    if (t.column === undefined) {
      out.columns.push("null");
      out.targets.push(targets[i]);
    } else if (col >= 0 && !input.arrays.some((a, k) => a === col && input.decoded[k])) {
      if (t.qualifier !== undefined && t.qualifier !== input.alias)
        throw new ColdReadError(`missing FROM-clause entry for table "${t.qualifier}"`, "42P01");
      out.columns.push(col);
      out.targets.push(nullTarget);
      out.nulled.push(i);
    } else {
      out.columns.push(null);
      out.targets.push(targets[i]);
    }
  });
  out.targets.push(rowTarget);
  return out;
}

/** The statement's own text with the changed spans replaced, or undefined when they cannot be placed. */
async function splicedText(
  source: StatementSource,
  v: ValidatedSelect,
  changes: SpliceChanges,
): Promise<string | undefined> {
  const text = await SourceText.of(source);
  const edits = text && evaluationEdits(text, v, changes);
  return edits && text.splice(edits);
}

/** The spliced text if it parses back to `select`, else the deparsed one if that does; else refused. */
async function checkedSql(select: Node, spliced: string | undefined): Promise<string> {
  if (spliced !== undefined) {
    try {
      return await checkedText(spliced, select);
    } catch (error) {
      if (!(error instanceof DeparseMismatch)) throw error;
    }
  }
  try {
    return await deparseChecked(select);
  } catch (error) {
    if (!(error instanceof DeparseMismatch)) throw error;
    throw new ColdReadError(
      "the statement could not be rebuilt exactly (neither its own text with the relations replaced nor the deparser's text parses back to it); it is not run",
      "0A000",
      { cause: new EvaluationTextMismatch(spliced, error.sql, { cause: error }) },
    );
  }
}

/** Both texts tried for a statement, neither of which parses back to its tree (for diagnosis). */
export class EvaluationTextMismatch extends Error {
  constructor(
    readonly spliced: string | undefined,
    /** The deparser's text. */
    readonly sql: string,
    options?: ErrorOptions,
  ) {
    super(
      `neither text parses back to the validated tree; spliced: ${spliced ?? "(could not splice)"}; deparsed: ${sql}`,
      options,
    );
  }
}
