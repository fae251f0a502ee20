/**
 * Maps stored COPY text rows, written with the columns a segment had then, to the columns its
 * segment table has now (offload.segment_read_plan): a stored field by position, or the value
 * rows that predate an added column show. Fields are split on raw tab bytes: COPY text escapes
 * tabs and newlines inside values, and every server encoding keeps those bytes ASCII.
 */
export interface ReadPlan {
  /** How many fields each stored row has. */
  fields: number;
  columns: Array<{ field: number } | { value: string | null }>;
}

export type RowMapper = (raw: Buffer) => Buffer;

const TAB = 0x09;
const NEWLINE = 0x0a;

/** A mapper for the plan, or undefined when stored rows already have the table's columns. */
export function columnMapper(plan: ReadPlan | null): RowMapper | undefined {
  if (!plan || isIdentity(plan)) return undefined;
  const sources = plan.columns.map((column) =>
    "field" in column ? column.field : Buffer.from(copyTextValue(column.value)),
  );
  return (raw) => mapRows(raw, plan.fields, sources);
}

function isIdentity(plan: ReadPlan): boolean {
  return (
    plan.columns.length === plan.fields &&
    plan.columns.every((column, i) => "field" in column && column.field === i)
  );
}

/** A value as a COPY text field: \N for NULL, backslash escapes for the bytes COPY escapes. */
export function copyTextValue(value: string | null): string {
  if (value === null) return "\\N";
  return value.replace(/[\\\t\n\r]/g, (c) =>
    c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r",
  );
}

function mapRows(raw: Buffer, fieldCount: number, sources: Array<number | Buffer>): Buffer {
  const out: Buffer[] = [];
  const bounds = new Array<number>(fieldCount + 1);
  let lineStart = 0;
  while (lineStart < raw.length) {
    let lineEnd = raw.indexOf(NEWLINE, lineStart);
    if (lineEnd < 0) lineEnd = raw.length;
    splitFields(raw, lineStart, lineEnd, bounds, fieldCount);
    sources.forEach((source, i) => {
      if (i > 0) out.push(TAB_BUFFER);
      out.push(
        typeof source === "number"
          ? raw.subarray(bounds[source] as number, (bounds[source + 1] as number) - 1)
          : source,
      );
    });
    out.push(NEWLINE_BUFFER);
    lineStart = lineEnd + 1;
  }
  return Buffer.concat(out);
}

const TAB_BUFFER = Buffer.from([TAB]);
const NEWLINE_BUFFER = Buffer.from([NEWLINE]);

/** bounds[i] is where field i starts; bounds[i + 1] - 1 where it ends. */
function splitFields(raw: Buffer, start: number, end: number, bounds: number[], count: number) {
  bounds[0] = start;
  let field = 1;
  for (let at = start; at < end && field < count; at++) {
    if (raw[at] === TAB) bounds[field++] = at + 1;
  }
  const extra = raw.indexOf(TAB, bounds[count - 1] as number);
  if (field !== count || (extra >= 0 && extra < end)) {
    throw new Error(`a stored row does not have the ${count} fields its layout records`);
  }
  bounds[count] = end + 1;
}
