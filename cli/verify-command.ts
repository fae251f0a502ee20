import { verifySegment } from "./catalog-calls.ts";
import { cliQuery } from "./cli-queries.ts";
import { UsageError, withClient, type Command } from "./command.ts";
import { Progress } from "./progress.ts";

interface SegmentRow {
  id: string;
  rows: string;
  stored_bytes: string;
}

export const verifyCommand: Command = {
  name: "verify",
  summary: "re-read every chunk of a table's segments from the store and report per segment",
  help: `pg-offload verify <table>

Reads every committed segment of the table from the store (never from the bridge's cache), as
offload.verify(table) does, one segment at a time (offload.verify_segment): each chunk checked
(CRC32C, size, rows against the index). A progress bar on a terminal, then one line per
segment; exit code 1 if any failed. Needs the bridge running.`,
  async run(args, config) {
    const table = args[0];
    if (!table || args.length > 1) throw new UsageError("name one table, e.g. public.events");
    return withClient(config(), async (client) => {
      const segments = (await client.query<SegmentRow>(cliQuery("verify-plan"), [table])).rows;
      const progress = new Progress();
      const state = {
        label: `verify ${table}`,
        done: 0,
        total: segments.length,
        unit: "segments",
        rows: 0,
        bytes: 0,
      };
      const lines: string[] = [];
      let failed = 0;
      for (const segment of segments) {
        progress.update(state);
        const r = await verifySegment(client, Number(segment.id));
        if (!r.ok) failed++;
        lines.push(
          `segment ${r.segment_id} (${r.segment_table}): ${r.chunks} chunks, ` +
            `${r.rows_read ?? "?"}/${r.rows_expected} rows, ${r.ok ? "ok" : `FAILED: ${r.problem}`}`,
        );
        state.done++;
        state.rows += Number(r.rows_read ?? 0);
        state.bytes += Number(segment.stored_bytes ?? 0);
      }
      progress.update(state);
      progress.finish(); // the outcome goes to stdout below, with the segments
      for (const line of lines) console.log(line);
      console.log(`${segments.length} segments checked, ${failed} failed`);
      return failed ? 1 : 0;
    });
  },
};
