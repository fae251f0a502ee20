import { readFileSync } from "node:fs";

/** A benchmark table: how to build it, the policy that offloads it, and the queries timed on it. */
export interface Dataset {
  name: string;
  timeColumn: string;
  /** Builds the table (with its indexes) in the current database. */
  createSql(rows: number): string;
  /** The rows the policy moves out, as a WHERE condition: the baseline pipeline copies these. */
  coldCondition: string;
  /** A query reading (nearly) every row, and one reading one day of the cold range. */
  query(name: "full" | "day", table: string): string;
}

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

function dataset(name: string, timeColumn: string, coldCondition: string): Dataset {
  const queries = namedQueries(`${name}-queries.sql`);
  return {
    name,
    timeColumn,
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
  readings: dataset("readings", "recorded_at", "recorded_at < now() - interval '30 days'"),
  lineitem: dataset("lineitem", "l_shipdate", "true"),
};

/** Builds `<table>_parse`: see sql/parse-limit.sql. `dir` must be writable by the server. */
export function parseLimitSql(table: string, dir: string): string {
  return sqlFile("parse-limit.sql").replaceAll("{table}", table).replaceAll("{dir}", dir);
}
