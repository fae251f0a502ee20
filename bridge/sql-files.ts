import { readFileSync } from "node:fs";

const cache = new Map<string, string>();

/** Reads a .sql file once; `folder` is a URL such as new URL("./queries/", import.meta.url). */
export function sqlFile(folder: URL, name: string): string {
  const url = new URL(`${name}.sql`, folder).href;
  let text = cache.get(url);
  if (text === undefined) {
    text = readFileSync(new URL(url), "utf8");
    cache.set(url, text);
  }
  return text;
}

const BRIDGE_QUERIES = new URL("./queries/", import.meta.url);

/** The text of bridge/queries/<name>.sql. */
export function query(name: string): string {
  return sqlFile(BRIDGE_QUERIES, name);
}
