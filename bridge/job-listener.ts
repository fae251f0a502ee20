import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "./db.ts";
import { backoffDelayMs, toError } from "./errors.ts";
import type { Logger } from "./log.ts";

export const JOBS_CHANNEL = "offload_jobs";

/**
 * Keeps a LISTEN connection on the jobs channel and calls `wake` on every notification and after
 * every (re)connect, since notifications sent while disconnected are lost. A notification is only
 * a latency hint: the worker polls anyway.
 */
export class JobListener {
  private readonly stopping = new AbortController();
  private readonly done: Promise<void>;

  constructor(
    private readonly databaseUrl: string,
    private readonly wake: () => void,
    private readonly log: Logger,
  ) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    const stopped = once(this.stopping.signal, "abort").then(() => undefined);
    for (let failures = 0; !this.stopping.signal.aborted;) {
      try {
        await this.listenUntilDisconnected(stopped);
        failures = 0;
      } catch (thrown) {
        if (this.stopping.signal.aborted) break;
        failures++;
        this.log.warn("job listener disconnected; reconnecting", { error: toError(thrown) });
        await Promise.race([sleep(backoffDelayMs(failures, 500, 30_000)), stopped]);
      }
    }
  }

  private async listenUntilDisconnected(stopped: Promise<void>): Promise<void> {
    const client = createClient(this.databaseUrl);
    const lost = new Promise<never>((_, reject) => {
      client.on("error", reject);
      client.on("end", () => reject(new Error("listener connection ended")));
    });
    lost.catch(() => {}); // observed through the race below
    try {
      await Promise.race([client.connect(), stopped]);
      if (this.stopping.signal.aborted) return;
      client.on("notification", () => this.wake());
      await client.query(`LISTEN ${JOBS_CHANNEL}`);
      this.wake();
      await Promise.race([lost, stopped]);
    } finally {
      client.removeAllListeners("notification");
      // end() can wait forever on a connection still being opened; do not let it hold up stop().
      await Promise.race([client.end().catch(() => {}), sleep(1_000)]);
    }
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.done;
  }
}
