import { bridgeLogger, startBridge } from "../bridge/bridge.ts";
import type { Command } from "./command.ts";

export const bridgeCommand: Command = {
  name: "bridge",
  summary: "run the bridge: install/upgrade the schema, serve reads, run jobs",
  help: `pg-offload bridge

Runs until SIGTERM or SIGINT. On the first signal it stops gracefully: it takes no new job, a
running job stops at its next safe point (its rows stay hot; the job is queued again for the
next bridge), scans being served get PGOFFLOAD_SHUTDOWN_GRACE_MS to finish and then fail with a
message saying the bridge stopped. A second signal fails the scans being served with that
message (waiting up to 5 s for it to go out) and exits (still safe: see README, Reliability).`,
  async run(_args, loadConfig) {
    const { config } = loadConfig();
    const log = bridgeLogger(config);
    const bridge = await startBridge(config, { log });
    await new Promise<void>((resolve) => {
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals) => {
        if (++signals > 1) {
          log.warn("second signal: exiting now", { signal });
          // Scans being served end with a line saying the bridge stopped, not cut mid-row. That
          // line goes out after what is already buffered for the scan (up to a chunk and the
          // socket's buffers), at the reader's pace; a reader that stopped reading holds it up
          // FORCED_STOP_MS at most.
          const cutOff = new Promise((resolve) => setTimeout(resolve, FORCED_STOP_MS).unref());
          void Promise.race([bridge.failScansNow(), cutOff]).finally(() => process.exit(1));
          return;
        }
        log.info("stopping", { signal });
        bridge.stop().then(resolve, (error) => {
          log.error("stop failed", { error });
          process.exit(1);
        });
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
    });
    log.info("bridge stopped");
    return 0;
  },
};

// How long a forced stop waits for the scans' last lines to be written: a few seconds, for a slow
// reader (a query that does work per row) to take in the buffered rows before them.
const FORCED_STOP_MS = 5_000;
