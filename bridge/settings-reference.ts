/**
 * The README's configuration reference, generated from the settings table (bridge/settings.ts), so
 * that the documented names, defaults and meanings are those the bridge reads.
 * `npm run docs:settings` prints it; test/settings-reference.test.ts fails when the README's differs.
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { SETTINGS } from "./settings.ts";

/** Rows that are no setting of ours, placed after the setting named. */
const NOTES: ReadonlyMap<string, string[]> = new Map([
  [
    "PGOFFLOAD_STORE_DEADLINE_MS",
    [
      "credentials",
      "",
      "from the AWS default chain: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, profiles, instance roles; never from the catalog",
    ],
  ],
  ["PGOFFLOAD_WORKER_ID", ["`PGOFFLOAD_CONFIG`", "none", "the settings file (as `--config`)"]],
]);

/** The reference as a Markdown table, one row per setting. */
export function settingsReference(): string {
  const rows: string[][] = [];
  for (const [name, setting] of SETTINGS) {
    const variable = setting.alias ? `\`${name}\` (or \`${setting.alias}\`)` : `\`${name}\``;
    rows.push([variable, setting.shownDefault, setting.meaning]);
    const note = NOTES.get(name);
    if (note) rows.push(note);
  }
  const lines = rows.map((cells) => `| ${cells.join(" | ")} |`.replace("|  |", "| |"));
  return ["| variable | default | meaning |", "|---|---|---|", ...lines].join("\n");
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(settingsReference());
}
