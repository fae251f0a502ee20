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
  private stopped = false;
  private client: ReturnType<typeof createClient> | undefined;
  private readonly done: Promise<void>;

  constructor(
    private readonly databaseUrl: string,
    private readonly wake: () => void,
    private readonly log: Logger,
  ) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    for (let failures = 0; !this.stopped;) {
      try {
        await this.listenUntilDisconnected();
        failures = 0;
      } catch (thrown) {
        if (this.stopped) break;
        failures++;
        this.log.warn("job listener disconnected; reconnecting", { error: toError(thrown) });
        await sleep(backoffDelayMs(failures, 500, 30_000));
      }
    }
  }

  private async listenUntilDisconnected(): Promise<void> {
    const client = createClient(this.databaseUrl);
    this.client = client;
    const lost = new Promise<never>((_, reject) => {
      client.on("error", reject);
      client.on("end", () => reject(new Error("listener connection ended")));
    });
    lost.catch(() => {});
    try {
      await client.connect();
      client.on("notification", () => this.wake());
      await client.query(`LISTEN ${JOBS_CHANNEL}`);
      this.wake();
      await lost;
    } finally {
      this.client = undefined;
      await client.end().catch(() => {});
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.client?.end().catch(() => {});
    await this.done;
  }
}
