import { parseArgs } from "node:util";
import { loadBack } from "./catalog-calls.ts";
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
    // One statement, one transaction: no count to show until it ends, only that it is working.
    const elapsed = () => ((performance.now() - started) / 1000).toFixed(0);
    process.stderr.write(`loading back ${table}...\n`);
    const ticker = process.stderr.isTTY
      ? setInterval(() => process.stderr.write(`\rloading back ${table}: ${elapsed()} s`), 1000)
      : undefined;
    const loaded = await withClient(config(), (client) =>
      loadBack(client, table, values.from ?? null, values.to ?? null),
    ).finally(() => {
      if (ticker) process.stderr.write("\n");
      clearInterval(ticker);
    });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`${loaded.toLocaleString("en")} rows loaded back in ${seconds} s`);
    return 0;
  },
};
