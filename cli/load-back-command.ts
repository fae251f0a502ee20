import { parseArgs } from "node:util";
import { cliQuery } from "./cli-queries.ts";
import { UsageError, withClient, type Command } from "./command.ts";

export const loadBackCommand: Command = {
  name: "load-back",
  summary: "bring a table's cold rows back into the heap",
  help: `pg-offload load-back <table> [--from KEY --to KEY]

Copies the rows of the table's segments back into the heap and drops the segment tables, in one
transaction, as SELECT offload.load_back(table, from, to) does. With --from and --to, only the
segments overlapping that key range (the policy's time column). Needs the bridge running: the
rows are read through it.`,
  async run(args, config) {
    const { positionals, values } = parseArgs({
      args,
      allowPositionals: true,
      options: { from: { type: "string" }, to: { type: "string" } },
    });
    const table = positionals[0];
    if (!table || positionals.length > 1) throw new UsageError("name one table");
    if ((values.from === undefined) !== (values.to === undefined)) {
      throw new UsageError("give --from and --to together");
    }
    const started = performance.now();
    process.stderr.write(`loading back ${table}...\n`);
    const { rows } = await withClient(config(), (client) =>
      client.query(cliQuery("load-back"), [table, values.from ?? null, values.to ?? null]),
    );
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`${Number(rows[0].rows).toLocaleString("en")} rows loaded back in ${seconds} s`);
    return 0;
  },
};
