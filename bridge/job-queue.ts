import type pg from "pg";
import { query } from "./sql-files.ts";

export interface ClaimedJob {
  id: number;
  tableName: string;
  tableOid: number;
  kind: "offload" | "rewrite";
  /** Attempts used of the limit, this one included (offload.jobs.attempts). */
  attempts: number;
  /** Runs retried without using an attempt so far (offload.jobs.retries). */
  retries: number;
  params: RewriteParams | Record<string, never>;
  /** The role that asked for the job: user-supplied SQL in it runs with this role's rights. */
  requestedBy: string;
}

/** What a rewrite job changes in the cold rows of its table (see offload.delete_cold/update_cold). */
export interface RewriteParams {
  delete: boolean;
  condition: string;
  assignments?: Record<string, string>;
  /** The asker's search_path, DateStyle, TimeZone and IntervalStyle when the job was queued. */
  settings?: Record<string, string>;
}

/**
 * An attempt's own progress: the work of earlier attempts is not in it (the queue adds what they
 * kept). segmentsTotal counts only what this attempt has to do.
 */
export interface JobProgress {
  segmentsTotal: number;
  segmentsDone: number;
  rowsDone: number;
  bytesDone: number;
  /**
   * The part of this attempt's work that a retry would not do again (segments committed, with
   * their rows and bytes): a later attempt starts counting from it.
   */
  kept: { segments: number; rows: number; bytes: number };
}

/** The bounds of offload.jobs.attempts and offload.jobs.retries (see sql/migrations/017_baseline.sql). */
export interface JobLimits {
  maxAttempts: number;
  maxConflictRetries: number;
}

/** One worker's view of the offload.jobs queue (graphile-worker's shape: claim, heartbeat, finish). */
export class JobQueue {
  /** The last progress write asked for: the next one waits for it. */
  private progressWrites: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: pg.Pool,
    private readonly workerId: string,
    private readonly leaseMs: number,
    private readonly limits: JobLimits,
  ) {}

  /**
   * The next due job, claimed; undefined when none is due. A job that would need an attempt
   * beyond the limit is failed by the claim itself (its last_error says so), and the next one
   * is tried.
   */
  async claim(): Promise<ClaimedJob | undefined> {
    const { maxAttempts, maxConflictRetries } = this.limits;
    for (;;) {
      const { rows } = await this.db.query(query("claim-job"), [
        this.workerId,
        this.leaseMs,
        maxAttempts,
        maxConflictRetries,
      ]);
      const row = rows[0];
      if (!row) return undefined;
      if (row.state !== "running") continue;
      return {
        id: Number(row.id),
        tableName: row.table_name,
        tableOid: Number(row.table_oid),
        kind: row.kind,
        attempts: row.attempts,
        retries: row.retries,
        params: row.params,
        requestedBy: row.requested_by,
      };
    }
  }

  /** False when the job is no longer this worker's (another took it over). */
  async heartbeat(jobId: number): Promise<boolean> {
    const { rowCount } = await this.db.query(query("heartbeat-job"), [jobId, this.workerId]);
    return rowCount === 1;
  }

  /**
   * Records a job's progress as it is now. Writes land in the order they were asked for, one at a
   * time: they go out on different pooled connections, and an update still in flight (say, one a
   * chunk upload sent without waiting) must never overwrite a newer one.
   */
  progress(jobId: number, p: JobProgress): Promise<void> {
    const values = [
      jobId,
      this.workerId,
      p.segmentsTotal,
      p.segmentsDone,
      p.rowsDone,
      p.bytesDone,
      p.kept.segments,
      p.kept.rows,
      p.kept.bytes,
    ];
    const write = this.progressWrites.then(() => this.db.query(query("job-progress"), values));
    this.progressWrites = write.then(
      () => {},
      () => {}, // the caller hears of its own failure; the next write goes ahead
    );
    return write.then(() => {});
  }

  async complete(jobId: number): Promise<void> {
    await this.db.query(query("complete-job"), [jobId, this.workerId]);
  }

  /** Back to the queue after a failure that used up the attempt. */
  async retryLater(jobId: number, error: string, delayMs: number): Promise<void> {
    await this.db.query(query("retry-job"), [jobId, this.workerId, error, delayMs]);
  }

  /** Back to the queue after a conflict with other sessions: a retry, the attempt not used up. */
  async retryFree(jobId: number, error: string, delayMs: number): Promise<void> {
    await this.db.query(query("retry-job-free"), [jobId, this.workerId, error, delayMs]);
  }

  /** Back to the queue, attempt not counted: the bridge is stopping, nothing failed. */
  async release(jobId: number): Promise<void> {
    await this.db.query(query("release-job"), [jobId, this.workerId]);
  }

  async fail(jobId: number, error: string): Promise<void> {
    await this.db.query(query("fail-job"), [jobId, this.workerId, error]);
  }
}
