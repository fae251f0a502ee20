import { cliQuery } from "./cli-queries.ts";
import { withClient, type Command } from "./command.ts";
import { textTable } from "./text-table.ts";

export const statusCommand: Command = {
  name: "status",
  summary: "every table with a policy: hot and cold rows and sizes, the latest job",
  help: `pg-offload status

Prints offload.tables as a table: for every table with a policy, its hot rows (estimate) and
size, its cold segments, rows and stored bytes, when it was last offloaded, and its latest job.`,
  async run(_args, config) {
    const { rows } = await withClient(config(), (client) => client.query(cliQuery("status")));
    console.log(rows.length ? textTable(rows) : "no table has a policy attached");
    return 0;
  },
};
