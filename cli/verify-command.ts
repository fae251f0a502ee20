import { query } from "../bridge/sql-files.ts";
import { UsageError, withClient, type Command } from "./command.ts";

export const verifyCommand: Command = {
  name: "verify",
  summary: "re-read every chunk of a table's segments from the store and report per segment",
  help: `pg-offload verify <table>

Runs SELECT * FROM offload.verify(table): every committed segment is read from the store (never
from the bridge's cache), each chunk checked (CRC32C, size, rows against the index). One line per
segment; exit code 1 if any failed. Needs the bridge running.`,
  async run(args, config) {
    const table = args[0];
    if (!table || args.length > 1) throw new UsageError("name one table, e.g. public.events");
    const { rows } = await withClient(config(), (client) =>
      client.query(query("verify-table"), [table]),
    );
    for (const r of rows) {
      const status = r.ok ? "ok" : `FAILED: ${r.problem}`;
      console.log(
        `segment ${r.segment_id} (${r.segment_table}): ${r.chunks} chunks, ` +
          `${r.rows_read ?? "?"}/${r.rows_expected} rows, ${status}`,
      );
    }
    const failed = rows.filter((r) => !r.ok).length;
    console.log(`${rows.length} segments checked, ${failed} failed`);
    return failed ? 1 : 0;
  },
};
