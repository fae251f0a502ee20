/** Quotes an SQL identifier (the one quoting helper on the TypeScript side; SQL uses format('%I')). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
