import { setTimeout as sleep } from "node:timers/promises";
import { describeError } from "../storage/describe-error.ts";
import { backoffDelayMs, isConflictError, isPermanentJobError, toError } from "./errors.ts";
import { failpoint } from "./failpoints.ts";
import type { ClaimedJob, JobQueue } from "./job-queue.ts";
import type { Logger } from "./log.ts";
import type { JobContext } from "./job-context.ts";
import { runOffloadJob } from "./offload-job.ts";
import { runRewriteJob } from "./rewrite-job.ts";

export interface JobWorkerOptions {
  pollIntervalMs: number;
  jobLeaseMs: number;
  retryBaseDelayMs: number;
  maxAttempts: number;
  maxConflictRetries: number;
}

/**
 * Claims and runs jobs one at a time: woken by NOTIFY, and by a poll timer in case a notification
 * was missed. While a job runs, a heartbeat keeps the claim; if the claim is lost, the job stops.
 */
export class JobWorker {
  private readonly stopping = new AbortController();
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private readonly done: Promise<void>;

  constructor(
    private readonly ctx: Omit<JobContext, "signal">,
    private readonly queue: JobQueue,
    private readonly options: JobWorkerOptions,
    private readonly log: Logger,
  ) {
    this.done = this.loop();
  }

  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  async stop(): Promise<void> {
    this.stopping.abort(new Error("pg-offload: the bridge is stopping"));
    this.wakeUp?.();
    await this.done;
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.stopping.signal.aborted) {
      try {
        const job = await this.queue.claim();
        failures = 0;
        if (job) await this.runJob(job);
        else await this.idle();
      } catch (thrown) {
        if (this.stopping.signal.aborted) break;
        // The database is down or unreachable, most likely: wait longer each time (up to
        // LOOP_BACKOFF_CAP_MS) rather than log an error every second until it is back.
        const delayMs = backoffDelayMs(++failures, 1000, LOOP_BACKOFF_CAP_MS);
        this.log.error("job loop error; retrying", { error: toError(thrown), failures, delayMs });
        await sleep(delayMs, undefined, { signal: this.stopping.signal }).catch(() => {});
      }
    }
  }

  private async idle(): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.options.pollIntervalMs);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wakeUp = undefined;
    this.woken = false;
  }

  private async runJob(job: ClaimedJob): Promise<void> {
    const log = this.log.child({ job: job.id, table: job.tableName });
    const lost = new AbortController();
    const heartbeat = setInterval(() => {
      this.queue.heartbeat(job.id).then(
        (stillOurs) => stillOurs || lost.abort(new Error("pg-offload: job was taken over")),
        (error) => log.warn("heartbeat failed", { error }),
      );
    }, this.options.jobLeaseMs / 4);
    try {
      log.info("job started", { attempt: job.attempts, retries: job.retries });
      failpoint("after-claim");
      const signal = AbortSignal.any([this.stopping.signal, lost.signal]);
      const run = job.kind === "rewrite" ? runRewriteJob : runOffloadJob;
      const result = await run({ ...this.ctx, signal }, job);
      failpoint("before-complete");
      await this.queue.complete(job.id);
      log.info("job succeeded", { ...result });
    } catch (thrown) {
      if (this.stopping.signal.aborted) {
        // Stopped at a safe point (DESIGN.md decision 4: the rows are still hot): not a failure.
        await this.queue.release(job.id);
        log.info("job stopped with the bridge; queued again", { error: toError(thrown) });
        return;
      }
      await this.recordFailure(job, toError(thrown), log);
    } finally {
      clearInterval(heartbeat);
    }
  }

  /**
   * Which failures use up an attempt: all but conflicts with other sessions (serialization
   * failure, deadlock, lock timeout), which are retried without one, as many as
   * maxConflictRetries times (a takeover of a lost bridge's job counts there too, see
   * claim-job.sql); past that they count like any other failure, so no job loops forever.
   */
  private async recordFailure(job: ClaimedJob, error: Error, log: Logger): Promise<void> {
    // Never empty: an error without a message still says what it is (name, code, causes).
    const message = describeError(error);
    if (
      !isPermanentJobError(error) &&
      isConflictError(error) &&
      job.retries < this.options.maxConflictRetries
    ) {
      const retry = job.retries + 1;
      const delay = backoffDelayMs(retry, this.options.retryBaseDelayMs, CONFLICT_BACKOFF_CAP_MS);
      log.warn("job ran into other sessions; will retry, attempt not counted", {
        error,
        retry,
        delayMs: delay,
      });
      await this.queue.retryFree(job.id, message, delay);
      return;
    }
    if (isPermanentJobError(error) || job.attempts >= this.options.maxAttempts) {
      log.error("job failed", { error, attempt: job.attempts });
      await this.queue.fail(job.id, message);
      return;
    }
    const delay = backoffDelayMs(job.attempts, this.options.retryBaseDelayMs);
    log.warn("job attempt failed; will retry", { error, attempt: job.attempts, delayMs: delay });
    await this.queue.retryLater(job.id, message, delay);
  }
}

const LOOP_BACKOFF_CAP_MS = 30_000;
// A busy table's conflicts pass in seconds, not hours: the retries of a conflict wait at most this.
const CONFLICT_BACKOFF_CAP_MS = 60_000;
