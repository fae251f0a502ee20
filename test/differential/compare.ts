// Runs one generated query on an offloaded table and on the reference, and says how the answers
// differ, if they do.
import type pg from "pg";
import { forTable, type GeneratedQuery } from "./query-generator.ts";

export type Outcome = { rows: string[] } | { error: { code: string; message: string } };

/**
 * The query's answer on each table, in one transaction rolled back after: `now()` is the same for
 * both. Each side runs under a savepoint, so that an error on one leaves the other to run.
 */
export async function runOnBoth(
  client: pg.PoolClient,
  query: GeneratedQuery,
  offloaded: string,
  reference: string,
): Promise<[offloaded: Outcome, reference: Outcome]> {
  await client.query("BEGIN");
  try {
    await client.query("SET LOCAL statement_timeout = '60s'");
    for (const setting of query.settings) await client.query(setting);
    const side = async (table: string) => {
      await client.query("SAVEPOINT side");
      const outcome = await runQuery(client, query, table);
      await client.query("ROLLBACK TO SAVEPOINT side");
      return outcome;
    };
    return [await side(offloaded), await side(reference)];
  } finally {
    await client.query("ROLLBACK");
  }
}

/** The query's rows as text (each row's ::text), or its error. */
async function runQuery(
  client: pg.PoolClient,
  query: GeneratedQuery,
  table: string,
): Promise<Outcome> {
  try {
    const { rows } = await client.query({
      text: `SELECT r::text AS row FROM (${forTable(query, table)}) r`,
      rowMode: "array",
    });
    const texts = rows.map((r: unknown[]) => (r[0] === null ? "<NULL>" : String(r[0])));
    return { rows: query.ordered ? texts : texts.sort() };
  } catch (error) {
    const e = error as { code?: string; message?: string };
    if (typeof e.code !== "string") throw error;
    return { error: { code: e.code, message: e.message ?? "" } };
  }
}

/**
 * Undefined when both answers are the same: the same rows (in order, for an ordered query) or the
 * same error code. Otherwise what differs, for a failure message.
 */
export function difference(offloaded: Outcome, reference: Outcome): string | undefined {
  if ("error" in offloaded || "error" in reference) {
    if ("error" in offloaded && "error" in reference) {
      return offloaded.error.code === reference.error.code
        ? undefined
        : `errors differ: offloaded ${describe(offloaded)}, never offloaded ${describe(reference)}`;
    }
    return `offloaded: ${describe(offloaded)}; never offloaded: ${describe(reference)}`;
  }
  const a = offloaded.rows;
  const b = reference.rows;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  if (i === a.length && i === b.length) return undefined;
  const show = (rows: string[]) =>
    rows
      .slice(i, i + 3)
      .map((r) => `    ${JSON.stringify(r.length > 300 ? `${r.slice(0, 300)}...` : r)}`)
      .join("\n") || "    (none)";
  return (
    `${a.length} rows offloaded, ${b.length} never offloaded; first difference at row ${i + 1}:\n` +
    `  offloaded:\n${show(a)}\n  never offloaded:\n${show(b)}`
  );
}

function describe(outcome: Outcome): string {
  return "error" in outcome
    ? `error ${outcome.error.code} (${outcome.error.message})`
    : `${outcome.rows.length} rows`;
}
