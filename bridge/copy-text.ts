/**
 * COPY text format → field values. One job: split a chunk's COPY text into rows of fields and
 * undo COPY's escaping (\N is NULL; \\ \b \f \n \r \t \v, octal \NNN and hex \xHH escapes; any
 * other escaped character stands for itself), giving each value's text exactly as the type's
 * output function wrote it.
 */

export type CopyRow = Array<string | null>;

const SIMPLE_ESCAPES: Record<string, string> = {
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
};

const BYTE_ESCAPE = /\\([0-7]|x[0-9a-fA-F])/;

/** The rows of a chunk; every row must have `columns` fields. */
export function parseCopyText(text: Buffer | string, columns: number): CopyRow[] {
  const s = typeof text === "string" ? text : text.toString("utf8");
  const rows: CopyRow[] = [];
  let start = 0;
  while (start < s.length) {
    let end = s.indexOf("\n", start);
    if (end < 0) end = s.length;
    const line = s.slice(start, end);
    start = end + 1;
    const fields = line.split("\t");
    if (fields.length !== columns)
      throw new Error(`COPY row ${rows.length + 1} has ${fields.length} fields, not ${columns}`);
    rows.push(fields.map(unescapeField));
  }
  return rows;
}

/** One field's value: null for \N, else the unescaped text. */
export function unescapeField(field: string): string | null {
  if (field === "\\N") return null;
  if (!field.includes("\\")) return field;
  if (!BYTE_ESCAPE.test(field))
    return field.replace(/\\([\s\S])/g, (_, c: string) => SIMPLE_ESCAPES[c] ?? c);
  // Octal and hex escapes name bytes (possibly parts of one multibyte character): decode bytes.
  const bytes: number[] = [];
  const push = (str: string) => {
    for (const b of Buffer.from(str, "utf8")) bytes.push(b);
  };
  let i = 0;
  while (i < field.length) {
    const c = field[i]!;
    if (c !== "\\" || i + 1 >= field.length) {
      // Whole code points: a surrogate pair stays together.
      const cp = field.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      push(ch);
      i += ch.length;
      continue;
    }
    const n = field[i + 1]!;
    if (n >= "0" && n <= "7") {
      let j = i + 1;
      let v = 0;
      while (j < field.length && j < i + 4 && field[j]! >= "0" && field[j]! <= "7") {
        v = v * 8 + Number(field[j]);
        j++;
      }
      bytes.push(v & 0xff);
      i = j;
    } else if (n === "x" && /^[0-9a-fA-F]/.test(field[i + 2] ?? "")) {
      let j = i + 2;
      let v = 0;
      while (j < field.length && j < i + 4 && /^[0-9a-fA-F]$/.test(field[j]!)) {
        v = v * 16 + parseInt(field[j]!, 16);
        j++;
      }
      bytes.push(v);
      i = j;
    } else {
      push(SIMPLE_ESCAPES[n] ?? n);
      i += 2;
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/** The values of some fields of every row, one array per requested field, in row order. */
export function copyTextColumns(raw: Buffer, fields: readonly number[]): CopyRow[] {
  const columns = fields.map((): CopyRow => []);
  const text = raw.toString("utf8");
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    const values = text.slice(start, end).split("\t");
    fields.forEach((field, i) => {
      const value = values[field];
      if (value === undefined)
        throw new Error(`COPY row has ${values.length} fields, no field ${field + 1}`);
      columns[i]?.push(unescapeField(value));
    });
    start = end + 1;
  }
  return columns;
}
