/**
 * Reads PostgreSQL's COPY text format (the format chunks store): rows end in a newline, fields
 * are separated by tabs, `\N` is NULL, and a backslash escapes the bytes that would otherwise be
 * special. Tabs and newlines inside values are always escaped, and every server encoding keeps
 * those bytes ASCII, so splitting on raw bytes is safe.
 */

const TAB = 0x09;
const NEWLINE = 0x0a;
const BACKSLASH = 0x5c;

/** The values of some fields of every row, one array per requested field, in row order. */
export function copyTextColumns(
  raw: Buffer,
  fields: readonly number[],
): Array<Array<string | null>> {
  const columns = fields.map(() => [] as Array<string | null>);
  const wanted = new Map(fields.map((field, i) => [field, i]));
  forEachRow(raw, (start, end) => {
    let field = 0;
    let fieldStart = start;
    for (let at = start; at <= end; at++) {
      if (at < end && raw[at] !== TAB) continue;
      const column = wanted.get(field);
      if (column !== undefined) columns[column]?.push(copyTextValue(raw, fieldStart, at));
      field++;
      fieldStart = at + 1;
    }
  });
  return columns;
}

/** Calls `row(start, end)` for each line of `raw` (end excludes the newline). */
export function forEachRow(raw: Buffer, row: (start: number, end: number) => void): void {
  let start = 0;
  while (start < raw.length) {
    let end = raw.indexOf(NEWLINE, start);
    if (end < 0) end = raw.length;
    row(start, end);
    start = end + 1;
  }
}

const SIMPLE_ESCAPES: Record<string, string> = {
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
};

/** One field's value: null for `\N`, else its text with COPY's escapes undone. */
export function copyTextValue(raw: Buffer, start: number, end: number): string | null {
  if (end - start === 2 && raw[start] === BACKSLASH && raw[start + 1] === 0x4e) return null;
  const text = raw.toString("utf8", start, end);
  if (raw.indexOf(BACKSLASH, start) < 0 || raw.indexOf(BACKSLASH, start) >= end) return text;
  return text.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/gs, (_, escape: string) => {
    if (/^[0-7]/.test(escape)) return String.fromCharCode(parseInt(escape, 8));
    if (escape.length > 1) return String.fromCharCode(parseInt(escape.slice(1), 16));
    return SIMPLE_ESCAPES[escape] ?? escape;
  });
}
