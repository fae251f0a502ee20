import { readFileSync } from "node:fs";
import type pg from "pg";

export function fixture(name: string): string {
  return readFileSync(new URL(`../fixtures/${name}`, import.meta.url), "utf8");
}

/** Every row of a query as its text form, in order: what "the same result set" compares. */
export async function resultSet(db: pg.Pool | pg.Client, sql: string): Promise<string[]> {
  const { rows } = await db.query({
    text: `SELECT r::text AS row FROM (${sql}) r`,
    rowMode: "array",
  });
  return rows.map((r: unknown[]) => String(r[0]));
}

/** Segment tables (foreign tables inheriting from the table) and how many. */
export async function segmentTables(db: pg.Pool, table: string): Promise<string[]> {
  const { rows } = await db.query(
    `SELECT c.oid::regclass::text AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = $1::regclass AND c.relkind = 'f' ORDER BY c.oid`,
    [table],
  );
  return rows.map((r) => r.name);
}

/** A table's direct partitions (or inheritance children), by name: kind 'p' is an offloaded one. */
export async function partitionsOf(
  db: pg.Pool | pg.ClientBase,
  table: string,
): Promise<Array<{ name: string; kind: string; oid: string }>> {
  const { rows } = await db.query(
    `SELECT c.relname AS name, c.relkind AS kind, c.oid::text AS oid
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = $1::regclass ORDER BY c.relname`,
    [table],
  );
  return rows;
}
