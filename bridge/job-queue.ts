import type pg from "pg";
import { query } from "./sql-files.ts";

export interface ClaimedJob {
  id: number;
  tableName: string;
  tableOid: number;
  kind: "offload" | "rewrite";
  attempts: number;
  params: RewriteParams | Record<string, never>;
  /** The role that asked for the job: user-supplied SQL in it runs with this role's rights. */
  requestedBy: string;
}

/** What a rewrite job changes in the cold rows of its table (see offload.delete_cold/update_cold). */
export interface RewriteParams {
  delete: boolean;
  condition: string;
  assignments?: Record<string, string>;
}

export interface JobProgress {
  segmentsTotal: number;
  segmentsDone: number;
  rowsDone: number;
  bytesDone: number;
}

/** One worker's view of the offload.jobs queue (graphile-worker's shape: claim, heartbeat, finish). */
export class JobQueue {
  /** The last progress write asked for: the next one waits for it. */
  private progressWrites: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: pg.Pool,
    private readonly workerId: string,
    private readonly leaseMs: number,
  ) {}

  async claim(): Promise<ClaimedJob | undefined> {
    const { rows } = await this.db.query(query("claim-job"), [this.workerId, this.leaseMs]);
    const row = rows[0];
    if (!row) return undefined;
    return {
      id: Number(row.id),
      tableName: row.table_name,
      tableOid: Number(row.table_oid),
      kind: row.kind,
      attempts: row.attempts,
      params: row.params,
      requestedBy: row.requested_by,
    };
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
    const values = [jobId, this.workerId, p.segmentsTotal, p.segmentsDone, p.rowsDone, p.bytesDone];
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

  async retryLater(jobId: number, error: string, delayMs: number): Promise<void> {
    await this.db.query(query("retry-job"), [jobId, this.workerId, error, delayMs]);
  }

  /** Back to the queue, attempt not counted: the bridge is stopping, nothing failed. */
  async release(jobId: number): Promise<void> {
    await this.db.query(query("release-job"), [jobId, this.workerId]);
  }

  async fail(jobId: number, error: string): Promise<void> {
    await this.db.query(query("fail-job"), [jobId, this.workerId, error]);
  }
}
