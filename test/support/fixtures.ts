import { readFileSync } from "node:fs";
import type pg from "pg";
import { expect } from "vitest";

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

/**
 * Expects a cold read to fail with a message holding `text`. The file reader's message comes in
 * the error's CONTEXT (`where`: the COPY line the endpoint sent), the postgres_fdw reader's as the
 * error's own message (the SQL endpoint's error, passed on by postgres_fdw).
 */
export async function expectColdReadFailure(query: Promise<unknown>, text: string): Promise<void> {
  const error = await query.then(
    () => undefined,
    (thrown: unknown) => thrown as { message?: string; where?: string },
  );
  if (!error) throw new Error(`the query succeeded; expected it to fail with "${text}"`);
  expect(`${error.message ?? ""}\n${error.where ?? ""}`).toContain(text);
}
