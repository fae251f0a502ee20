import { dueSegments, writeSettings } from "./policy-plan.ts";
import type { JobContext } from "./job-context.ts";
import type { ClaimedJob, JobProgress } from "./job-queue.ts";
import { checkTable } from "./catalog-calls.ts";
import { mergeOverBound } from "./segment-merge.ts";
import { writeSegment } from "./segment-writer.ts";

/**
 * Offloads what is due on one table: plans the key ranges, then writes them one segment at a
 * time, each committed on its own, so a failure part-way keeps what was already done and the
 * retry finds only the rest due. Progress is this attempt's: the queue adds what earlier ones
 * committed. Then, for a table read through postgres_fdw, segments over the table's bound of
 * segment tables are merged (segment-merge.ts).
 */
export async function runOffloadJob(ctx: JobContext, job: ClaimedJob): Promise<JobProgress> {
  await checkTable(ctx.db, job.tableOid);
  const ranges = await dueSegments(ctx.db, job.tableOid, ctx.segmentTargetBytes);
  const settings = await writeSettings(ctx.db, job.tableOid, ctx);
  const log = ctx.log.child({ job: job.id, table: job.tableName });
  log.info("offload planned", { segments: ranges.length });
  const progress: JobProgress = {
    segmentsTotal: ranges.length,
    segmentsDone: 0,
    rowsDone: 0,
    bytesDone: 0,
    kept: { segments: 0, rows: 0, bytes: 0 },
  };
  await ctx.queue.progress(job.id, progress);
  for (const range of ranges) {
    ctx.signal.throwIfAborted();
    const before = { ...progress };
    const outcome = await writeSegment({ ...ctx, ...settings, log }, job, range, (chunk) => {
      progress.rowsDone += chunk.rows;
      progress.bytesDone += chunk.raw_bytes;
      // Progress is a display: a failed update must not fail the offload.
      ctx.queue.progress(job.id, progress).catch((error) => {
        log.warn("could not record job progress", { error });
      });
    }).catch((error) => {
      Object.assign(progress, before);
      throw error;
    });
    ctx.offloads?.segmentCommitted(outcome.rows, outcome.rawBytes, outcome.storedBytes);
    progress.segmentsDone++;
    // A committed segment is no longer due: a retry neither plans nor counts it again.
    if (outcome.segmentTable) {
      progress.kept = {
        segments: progress.kept.segments + 1,
        rows: progress.kept.rows + outcome.rows,
        bytes: progress.kept.bytes + outcome.rawBytes,
      };
    }
    await ctx.queue.progress(job.id, progress);
  }
  await mergeOverBound(ctx, job.tableOid, log);
  return progress;
}
