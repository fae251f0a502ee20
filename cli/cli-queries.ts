import { sqlFile } from "../bridge/sql-files.ts";

const CLI_QUERIES = new URL("./queries/", import.meta.url);

/** The text of cli/queries/<name>.sql. */
export function cliQuery(name: string): string {
  return sqlFile(CLI_QUERIES, name);
}
