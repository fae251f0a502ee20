/** Rows as an aligned text table, as psql prints them: a header, a rule, one line per row. */
export function textTable(rows: Array<Record<string, unknown>>, columns?: string[]): string {
  const names = columns ?? Object.keys(rows[0] ?? {});
  const cells = rows.map((row) => names.map((name) => cellText(row[name])));
  const widths = names.map((name, i) =>
    Math.max(name.length, ...cells.map((line) => line[i]!.length)),
  );
  const line = (values: string[]) =>
    values
      .map((value, i) => value.padEnd(widths[i]!))
      .join(" | ")
      .trimEnd();
  return [
    line(names),
    widths.map((w) => "-".repeat(w)).join("-+-"),
    ...cells.map(line),
    `(${rows.length} ${rows.length === 1 ? "row" : "rows"})`,
  ].join("\n");
}

function cellText(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (value instanceof Date) return value.toISOString();
  return String(value);
}

/** 1536 -> "1.5 KiB". */
export function bytesText(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
