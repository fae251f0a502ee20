import { readFileSync } from "node:fs";

/** A benchmark table: how to build it, the policy that offloads it, and the queries timed on it. */
export interface Dataset {
  name: string;
  timeColumn: string;
  /** The primary key's columns, given to the hot copy too. */
  primaryKey: string;
  /** The column point lookups and the join use: the policy's zone map. */
  lookupKey: string;
  /** Builds the table (with its indexes) in the current database. */
  createSql(rows: number): string;
  /** The rows the policy moves out, as a WHERE condition: the baseline pipeline copies these. */
  coldCondition: string;
  /** A query reading (nearly) every row, and the selective ones (SELECTIVE_QUERIES). */
  query(name: "full" | SelectiveQuery, table: string): string;
}

/** Queries that read few cold rows: one day of the cold range, one row by id, 100 ids by a join. */
export const SELECTIVE_QUERIES = ["day", "point", "join100"] as const;
export type SelectiveQuery = (typeof SELECTIVE_QUERIES)[number];

const sqlFile = (name: string) => readFileSync(new URL(`./sql/${name}`, import.meta.url), "utf8");

function namedQueries(file: string): Map<string, string> {
  return new Map(
    sqlFile(file)
      .split("-- name: ")
      .slice(1)
      .map((block) => {
        const [name, ...sql] = block.split("\n");
        return [name!.trim(), sql.join("\n").trim()];
      }),
  );
}

/** Midnight UTC, `days` days ago, as an ISO timestamp. */
function daysAgo(days: number): string {
  const day = new Date(Date.now() - days * 86_400_000);
  return `${day.toISOString().slice(0, 10)} 00:00:00+00`;
}

function dataset(
  name: string,
  timeColumn: string,
  primaryKey: string,
  coldCondition: string,
): Dataset {
  const queries = namedQueries(`${name}-queries.sql`);
  return {
    name,
    timeColumn,
    primaryKey,
    lookupKey: primaryKey.split(",")[0]!.trim(),
    coldCondition,
    createSql: (rows) => sqlFile(`${name}.sql`).replaceAll("{rows}", String(rows)),
    query: (query, table) =>
      queries
        .get(query)!
        .replaceAll("{table}", table)
        .replaceAll("{day_from}", daysAgo(200))
        .replaceAll("{day_to}", daysAgo(199)),
  };
}

export const DATASETS: Record<string, Dataset> = {
  readings: dataset("readings", "recorded_at", "id", "recorded_at < now() - interval '30 days'"),
  lineitem: dataset("lineitem", "l_shipdate", "l_orderkey, l_linenumber", "true"),
};

/** Builds `<table>_parse`: see sql/parse-limit.sql. `dir` must be writable by the server. */
export function parseLimitSql(table: string, dir: string): string {
  return sqlFile("parse-limit.sql").replaceAll("{table}", table).replaceAll("{dir}", dir);
}
