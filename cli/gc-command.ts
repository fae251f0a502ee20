import { parseArgs } from "node:util";
import { currentInstallation } from "../bridge/catalog-calls.ts";
import { createPool } from "../bridge/db.ts";
import { collectGarbage } from "../bridge/garbage-collector.ts";
import { createLogger } from "../bridge/log.ts";
import { openStore } from "../storage/open-store.ts";
import { rateLimited } from "../storage/rate-limited-store.ts";
import type { Command } from "./command.ts";

export const gcCommand: Command = {
  name: "gc",
  summary: "remove objects nothing will read again (--dry-run: list them only)",
  help: `pg-offload gc [--dry-run]

Lists the store under this installation's prefix and removes the objects of abandoned attempts,
of segments loaded back or dropped, and of replaced epochs, once PGOFFLOAD_GC_GRACE_MS has passed.
Never an object a committed segment references, nor one pg-offload did not name. The bridge also
runs this on its schedule.

  --dry-run   print what would be removed, remove nothing`,
  async run(args, loadConfig) {
    const { values } = parseArgs({ args, options: { "dry-run": { type: "boolean" } } });
    const dryRun = values["dry-run"] ?? false;
    const { config } = loadConfig();
    const db = createPool(config.databaseUrl, createLogger());
    try {
      const installationId = await currentInstallation(db);
      const store = rateLimited(openStore(config.store), config.backgroundLimits);
      const report = await collectGarbage(db, store, installationId, {
        graceMs: config.gcGraceMs,
        leaseMs: config.jobLeaseMs,
        dryRun,
      });
      for (const c of report.candidates) {
        console.log(
          `${dryRun ? "would remove" : "removed"} ${c.key} (${c.size} bytes): ${c.reason}`,
        );
      }
      const unnamed = report.unrecognised
        ? `, ${report.unrecognised} not named by pg-offload (left alone)`
        : "";
      console.log(
        `${report.listed} objects listed, ${report.candidates.length} garbage, ` +
          `${report.deleted} removed${unnamed}`,
      );
      return 0;
    } finally {
      await db.end();
    }
  },
};
