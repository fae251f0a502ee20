/**
 * The statement's own text with some spans replaced. postgres_fdw's text was printed by
 * PostgreSQL itself, so keeping it (rather than printing the tree again) keeps every cast and
 * literal exactly as sent. The parse tree's `location` fields and libpg-query's tokens are byte
 * offsets into the UTF-8 text; all spans here are byte offsets too.
 */
import { parse, scan } from "libpg-query";
import { canonical, nodeOf, type Fields } from "./parse-tree.ts";
import type { ValidatedSelect } from "./select-validator.ts";

/** The statement as received: its text and its tree (the locations of which may be offsets into a longer text). */
export interface StatementSource {
  sql: string;
  tree: unknown;
}

export interface Edit {
  /** Byte offsets into the statement's text: [start, end) is replaced by `text`. */
  start: number;
  end: number;
  text: string;
}

interface Token {
  start: number;
  end: number;
  tokenName: string;
  keywordKind: number;
  text: string;
}

/** The statement's text and tokens, with the tree's locations translated into offsets into it. */
export class SourceText {
  private readonly byStart = new Map<number, number>();

  private constructor(
    readonly bytes: Buffer,
    private readonly tokens: Token[],
    private readonly shift: number,
    /** The bytes of the SELECT (without DECLARE ... FOR, EXPLAIN or a trailing semicolon). */
    private readonly range: [number, number],
  ) {
    tokens.forEach((t, i) => this.byStart.set(t.start, i));
  }

  /** The text of `source`, or undefined when its tree's locations cannot be placed in it. */
  static async of(source: StatementSource): Promise<SourceText | undefined> {
    let kind: string | undefined;
    let select: unknown;
    let tokens: Token[];
    try {
      [kind, select] = selectOf(await parse(source.sql));
      tokens = (await scan(source.sql)).tokens;
    } catch {
      return undefined;
    }
    const begin = kind && selectStart(kind, tokens);
    if (select === undefined || !begin) return undefined;
    const here = firstLocation(select);
    const wrapped = nodeOf(source.tree);
    const tree = wrapped?.[0] === "SelectStmt" ? wrapped[1] : source.tree;
    const there = firstLocation(tree);
    if (here === undefined || there === undefined) return undefined;
    const shift = here - there;
    // The same statement, every location `shift` bytes away: the offsets are into this text.
    if (canonical(shifted(tree, shift)) !== canonical(select)) return undefined;
    const last = tokens[tokens.length - 1]?.text === ";" ? tokens.length - 2 : tokens.length - 1;
    const bytes = Buffer.from(source.sql, "utf8");
    return new SourceText(bytes, tokens, shift, [begin.start, tokens[last]!.end]);
  }

  /** Index of the token a node's location points at. */
  token(location: unknown): number | undefined {
    if (typeof location !== "number") return undefined;
    return this.byStart.get(location + this.shift);
  }

  /** [first, last] token indexes of a dotted name (`schema."Rel"`, `r1.col`) starting at `location`. */
  name(location: unknown): [number, number] | undefined {
    const first = this.token(location);
    if (first === undefined || !this.isNamePart(first)) return undefined;
    let last = first;
    while (this.tokens[last + 1]?.text === "." && this.isNamePart(last + 2)) last += 2;
    return [first, last];
  }

  /** Index of the `)` that closes the `(` at token `open`. */
  closing(open: number): number | undefined {
    if (this.tokens[open]?.text !== "(") return undefined;
    let depth = 0;
    for (let i = open; i < this.tokens.length; i++) {
      const text = this.tokens[i]!.text;
      if (text === "(") depth++;
      else if (text === ")" && --depth === 0) return i;
    }
    return undefined;
  }

  at(index: number): Token | undefined {
    return this.tokens[index];
  }

  /** Replaces the spans; undefined when two overlap. */
  splice(edits: Edit[]): string | undefined {
    const sorted = [...edits].sort((a, b) => a.start - b.start || a.end - b.end);
    const parts: Buffer[] = [];
    let at = this.range[0];
    for (const e of sorted) {
      if (e.start < at || e.end > this.range[1]) return undefined;
      parts.push(this.bytes.subarray(at, e.start), Buffer.from(e.text, "utf8"));
      at = e.end;
    }
    parts.push(this.bytes.subarray(at, this.range[1]));
    return Buffer.concat(parts).toString("utf8");
  }

  private isNamePart(index: number): boolean {
    const t = this.tokens[index];
    return (
      t !== undefined &&
      (t.tokenName === "IDENT" || t.tokenName === "UIDENT" || t.keywordKind !== 0)
    );
  }
}

/**
 * The statement's kind and SelectStmt fields, for a parse result of one SELECT, DECLARE ... FOR
 * SELECT or EXPLAIN SELECT.
 */
function selectOf(result: unknown): [string | undefined, unknown] {
  const stmts = (result as { stmts?: Array<{ stmt?: unknown }> }).stmts ?? [];
  const node = stmts.length === 1 ? nodeOf(stmts[0]!.stmt) : undefined;
  if (node?.[0] === "SelectStmt") return [node[0], node[1]];
  if (node?.[0] === "DeclareCursorStmt" || node?.[0] === "ExplainStmt") {
    const query = nodeOf(node[1].query);
    return [node[0], query?.[0] === "SelectStmt" ? query[1] : undefined];
  }
  return [undefined, undefined];
}

/** The first token of the SELECT: after `DECLARE name ... CURSOR ... FOR`, after `EXPLAIN`. */
function selectStart(kind: string, tokens: Token[]): Token | undefined {
  if (kind === "SelectStmt") return tokens[0];
  if (kind === "ExplainStmt") return tokens[1];
  const cursor = tokens.findIndex((t) => t.text.toUpperCase() === "CURSOR");
  const forAt = tokens.findIndex((t, i) => i > cursor && t.text.toUpperCase() === "FOR");
  return cursor < 0 || forAt < 0 ? undefined : tokens[forAt + 1];
}

function firstLocation(value: unknown): number | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const location = (value as Fields).location;
  if (typeof location === "number") return location;
  for (const v of Object.values(value)) {
    const found = firstLocation(v);
    if (found !== undefined) return found;
  }
  return undefined;
}

const POSITIONS = new Set([
  "location",
  "rexpr_list_start",
  "rexpr_list_end",
  "list_start",
  "list_end",
]);

/** A copy with every position (but unknown ones, -1) moved by `shift`. */
function shifted(value: unknown, shift: number): unknown {
  if (Array.isArray(value)) return value.map((v) => shifted(v, shift));
  if (typeof value !== "object" || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const position = POSITIONS.has(k) && typeof v === "number" && v >= 0;
    out[k] = position ? v + shift : shifted(v, shift);
  }
  return out;
}

/** What the evaluation changes in the statement. */
export interface SpliceChanges {
  /** Per relation (ValidatedSelect.relations), the text standing for its name. */
  relations: string[];
  /** The simple scan: indexes of the targets that become NULL, and the target appended. */
  nulled?: number[];
  appended?: string;
  /** Type names of the parameters typed in the Parse message (cast in the tree). */
  paramTypes: Map<number, string>;
}

/** The edits making the statement's text the evaluation's, or undefined when a span is not found. */
export function evaluationEdits(
  text: SourceText,
  v: ValidatedSelect,
  changes: SpliceChanges,
): Edit[] | undefined {
  const edits: Array<Edit | undefined> = v.relations.map((rv, r) =>
    nameEdit(text, rv.location, changes.relations[r]!),
  );
  if (v.sample) edits.push(sampleEdit(text, v.sample.node));
  if (v.simple) edits.push(...targetEdits(text, v.select, changes));
  edits.push(...paramEdits(text, v.select, changes.paramTypes));
  return edits.every((e) => e !== undefined) ? (edits as Edit[]) : undefined;
}

function span(text: SourceText, first: number, last: number, replacement: string): Edit {
  return { start: text.at(first)!.start, end: text.at(last)!.end, text: replacement };
}

function nameEdit(text: SourceText, location: unknown, replacement: string): Edit | undefined {
  const name = text.name(location);
  return name && span(text, name[0], name[1], replacement);
}

/** `TABLESAMPLE method (args)` removed (the node's location is the method's). */
function sampleEdit(text: SourceText, sample: Fields): Edit | undefined {
  const method = text.name(sample.location);
  if (!method || text.at(method[0] - 1)?.text.toUpperCase() !== "TABLESAMPLE") return undefined;
  const close = text.closing(method[1] + 1);
  return close === undefined ? undefined : span(text, method[0] - 1, close, "");
}

/** The simple scan's targets: undecodable columns become NULL, the row number is appended. */
function targetEdits(
  text: SourceText,
  select: Fields,
  changes: SpliceChanges,
): Array<Edit | undefined> {
  const spans = (select.targetList as unknown[]).map((t) => {
    const val = nodeOf(nodeOf(t)![1].val)!;
    if (val[0] === "ColumnRef") return text.name(val[1].location);
    const at = text.token(val[1].location);
    return at === undefined ? undefined : ([at, at] as [number, number]);
  });
  if (spans.some((s) => s === undefined)) return [undefined];
  const edits = (changes.nulled ?? []).map((i) => span(text, spans[i]![0], spans[i]![1], "NULL"));
  if (changes.appended !== undefined) {
    const end = text.at(spans[spans.length - 1]![1])!.end;
    edits.push({ start: end, end, text: `, ${changes.appended}` });
  }
  return edits;
}

/** `$n` cast to the type the Parse message gave it: `($n::type)`. */
function paramEdits(
  text: SourceText,
  value: unknown,
  types: Map<number, string>,
): Array<Edit | undefined> {
  if (typeof value !== "object" || value === null) return [];
  const node = nodeOf(value);
  const param = node?.[0] === "TypeCast" ? nodeOf(node[1].arg) : undefined;
  if (param?.[0] === "ParamRef" && node![1].location === undefined) {
    const n = param[1].number as number;
    const at = text.token(param[1].location);
    if (at === undefined || !types.has(n)) return [undefined];
    return [span(text, at, at, `($${n}::${types.get(n)!})`)];
  }
  return Object.values(value).flatMap((v) => paramEdits(text, v, types));
}
