import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { queueOffload } from "./catalog-calls.ts";
import { cliQuery } from "./cli-queries.ts";
import { UsageError, withClient, type Command } from "./command.ts";
import { Progress } from "./progress.ts";

interface JobRow {
  state: string;
  last_error: string | null;
  attempts: number;
  segments_total: number | null;
  segments_done: number;
  rows_done: string;
  bytes_done: string;
}

export const runCommand: Command = {
  name: "run",
  summary: "offload a table's due rows now and follow the job",
  help: `pg-offload run <table> [--no-wait]

Queues an offload of the table's due rows (its policy decides which), as SELECT offload.run(table)
does, then follows the job until it ends: a progress bar on a terminal, a line every 10 s
otherwise. A running bridge does the work. Exit code 0 when the job succeeds, 1 when it fails.

  --no-wait   queue the job, print its id and exit`,
  async run(args, config) {
    const { positionals, values } = parseArgs({
      args,
      allowPositionals: true,
      options: { "no-wait": { type: "boolean" } },
    });
    const table = positionals[0];
    if (!table || positionals.length > 1) throw new UsageError("name one table");
    return withClient(config(), async (client) => {
      const id = await queueOffload(client, table);
      console.log(`job ${id} queued: offload of ${table}`);
      if (values["no-wait"]) return 0;
      const progress = new Progress();
      for (;;) {
        const job = (await client.query<JobRow>(cliQuery("job"), [id])).rows[0];
        if (!job) throw new Error(`job ${id} vanished`);
        progress.update({
          label: `job ${id} ${job.state}`,
          done: job.segments_done,
          total: job.segments_total ?? undefined,
          unit: "segments",
          rows: Number(job.rows_done),
          bytes: Number(job.bytes_done),
        });
        if (job.state === "succeeded") {
          progress.finish(
            `job ${id} succeeded: ${Number(job.rows_done).toLocaleString("en")} rows moved`,
          );
          return 0;
        }
        if (job.state === "failed") {
          progress.finish(`job ${id} failed after ${job.attempts} attempts: ${job.last_error}`);
          return 1;
        }
        await sleep(500);
      }
    });
  },
};
