import type pg from "pg";

/**
 * md5 over every row of the table in id order, hot and cold: equal digests, equal contents.
 * An empty table has a digest too ("0:" and the md5 of nothing), so that it compares equal only
 * to another empty table.
 */
export async function tableDigest(db: pg.Pool, table: string): Promise<string> {
  const { rows } = await db.query(
    `SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY id), '')) AS digest
       FROM ${table} t`,
  );
  return rows[0].digest;
}

/** Rows that are both hot and cold, or twice cold: must always be zero. */
export async function duplicatedIds(db: pg.Pool, table: string): Promise<number> {
  const { rows } = await db.query(
    `SELECT count(*)::int AS n FROM (SELECT id FROM ${table} GROUP BY id HAVING count(*) > 1) d`,
  );
  return rows[0].n;
}
