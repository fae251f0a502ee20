/**
 * What a statement may call and cast to, from the catalog: functions of pg_catalog that are
 * immutable in every overload (no set-returning ones, none taking or returning internal, cstring
 * or a reg* type), and types of pg_catalog or of the segment's own (decodable) columns, never a
 * domain, a composite or a pseudo-type. Also refuses column types with a cast through a function
 * outside pg_catalog (it would be the table owner's code).
 */
import type pg from "pg";
import { refuse, type FunctionCall } from "./select-validator.ts";
import { names, quoteIdent, type Fields } from "./parse-tree.ts";

/** Immutable but still refused: nothing a foreign scan needs, and their input is code or SQL. */
const DENIED_FUNCTIONS = new Set(["set_config", "current_setting", "ts_rewrite", "ts_stat"]);

/** Every function of pg_catalog: whether it is safe to call, and which argument counts it takes. */
const FUNCTIONS_SQL = `
SELECT p.proname, p.pronargs, p.pronargdefaults, p.provariadic <> 0 AS variadic,
       p.provolatile, NOT p.proretset AND p.prokind IN ('f', 'a')
       AND NOT EXISTS (
         SELECT FROM pg_catalog.unnest(p.proargtypes::pg_catalog.oid[] || p.prorettype) AS a(t)
           JOIN pg_catalog.pg_type ty ON ty.oid = a.t
          WHERE ty.typname IN ('internal', 'cstring', 'pg_node_tree', 'trigger', 'event_trigger')
             OR ty.typname ~ '^_?reg') AS safe
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace`;

interface Overload {
  min: number;
  max: number;
  /** Immutable ('i'), stable ('s') or volatile ('v'). */
  volatility: string;
  /** Not set-returning, no internal, cstring or reg* value, not denied. */
  safe: boolean;
}

export class CatalogChecks {
  private functions: Promise<Map<string, Overload[]>> | undefined;

  constructor(private readonly pool: pg.Pool) {}

  /** pg_catalog's functions by name (loaded once). */
  overloads(): Promise<Map<string, Overload[]>> {
    this.functions ??= this.pool
      .query<{
        proname: string;
        pronargs: number;
        pronargdefaults: number;
        variadic: boolean;
        provolatile: string;
        safe: boolean;
      }>(FUNCTIONS_SQL)
      .then(
        (r) => {
          const map = new Map<string, Overload[]>();
          for (const row of r.rows) {
            const list = map.get(row.proname) ?? [];
            list.push({
              min: row.pronargs - row.pronargdefaults - (row.variadic ? 1 : 0),
              max: row.variadic ? Infinity : row.pronargs,
              volatility: row.provolatile,
              safe: row.safe && !DENIED_FUNCTIONS.has(row.proname),
            });
            map.set(row.proname, list);
          }
          return map;
        },
        (error: unknown) => {
          this.functions = undefined;
          throw error;
        },
      );
    return this.functions;
  }

  /**
   * Every call must name a pg_catalog function of which every overload that takes that many
   * arguments is safe (not set-returning, no internal, cstring or reg* value) and immutable, the
   * one PostgreSQL picks then being safe whichever it is. A family with immutable forms may have
   * stable ones too (date_trunc, date_part, to_char: the forms on timestamptz read the time
   * zone): postgres_fdw ships the immutable form, and which form applies is the server's choice
   * by argument types, so such a family is allowed; a stable one alone (current_setting,
   * has_table_privilege, ...) never is, nor anything volatile.
   */
  async checkFunctions(calls: FunctionCall[]): Promise<void> {
    const all = await this.overloads();
    for (const { name, args } of calls) {
      const candidates = (all.get(name) ?? []).filter((o) => o.min <= args && args <= o.max);
      const allowed =
        candidates.some((o) => o.volatility === "i") &&
        candidates.every((o) => o.safe && (o.volatility === "i" || o.volatility === "s"));
      if (!allowed)
        refuse(
          `function ${name} is not allowed: only pg_catalog functions with an immutable form taking ${args} argument(s), and no volatile one, are`,
          "42501",
        );
    }
  }

  /**
   * Checks the casts' target types and the decoded columns' types. `columnTypes` are the
   * decodeAs types of the columns the statement decodes. Runs on `client` (search_path pinned
   * to pg_catalog by the caller's transaction).
   */
  async checkTypes(client: pg.ClientBase, casts: Fields[], columnTypes: string[]): Promise<void> {
    const castNames = casts.map(typeNameText);
    const { rows } = await client.query<{
      i: number;
      name: string;
      oid: string | null;
      nspname: string | null;
      typtype: string | null;
      typname: string | null;
      typrelid: string | null;
      typelem: string | null;
      typarray: string | null;
      owner_cast: boolean;
    }>(
      `SELECT a.i, a.name, t.oid, n.nspname, t.typtype, t.typname, t.typrelid, t.typelem, t.typarray,
              EXISTS (SELECT FROM pg_catalog.pg_cast c JOIN pg_catalog.pg_proc p ON p.oid = c.castfunc
                       WHERE p.pronamespace <> 'pg_catalog'::pg_catalog.regnamespace
                         AND (c.castsource IN (t.oid, t.typelem) OR c.casttarget IN (t.oid, t.typelem))
                     ) AS owner_cast
         FROM pg_catalog.unnest($1::pg_catalog.text[]) WITH ORDINALITY AS a(name, i)
         LEFT JOIN pg_catalog.pg_type t ON t.oid = pg_catalog.to_regtype(a.name)
         LEFT JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
        ORDER BY a.i`,
      [[...columnTypes, ...castNames]],
    );
    const columnOids = new Set<string>();
    for (const row of rows) {
      const isColumn = row.i <= columnTypes.length;
      if (row.oid === null) refuse(`type ${row.name} does not exist`, "42704");
      if (row.owner_cast)
        refuse(`type ${row.name} has a cast through a function outside pg_catalog`, "0A000");
      if (isColumn) {
        for (const oid of [row.oid, row.typelem, row.typarray])
          if (oid && String(oid) !== "0") columnOids.add(String(oid));
        continue;
      }
      if (columnOids.has(String(row.oid)) && ["b", "e", "r", "m"].includes(row.typtype ?? ""))
        continue;
      if (row.typtype === "d")
        refuse(`cast to domain ${row.name} is not allowed (its CHECK may run code)`, "42501");
      if (row.nspname !== "pg_catalog")
        refuse(
          `cast to ${row.name} is not allowed: only pg_catalog types and the table's column types`,
          "42501",
        );
      if (!["b", "r", "m"].includes(row.typtype ?? "") || String(row.typrelid) !== "0")
        refuse(
          `cast to ${row.name} is not allowed (not a base, range or multirange type)`,
          "42501",
        );
      if (/^_?reg/.test(row.typname ?? "") || row.typname === "pg_node_tree")
        refuse(`cast to ${row.name} is not allowed (it reads the catalog)`, "42501");
    }
  }
}

/** A TypeName's text for to_regtype: quoted names and [] for array bounds (typmods left out). */
export function typeNameText(t: Fields): string {
  const parts = names(t.names) ?? [];
  const bounds = Array.isArray(t.arrayBounds) ? t.arrayBounds.length : 0;
  return parts.map(quoteIdent).join(".") + "[]".repeat(bounds);
}
