import type { JobQueue } from "./job-queue.ts";
import type { OffloadObserver } from "./metrics.ts";
import type { SegmentWriterContext } from "./segment-writer.ts";

/**
 * What the worker (job-worker.ts) hands every job it runs, whatever its kind (offload-job.ts,
 * rewrite-job.ts): the database, the store and how to write chunks to it, the segment tables'
 * reader programs, the queue, and the job's abort signal.
 */
export interface JobContext extends SegmentWriterContext {
  queue: JobQueue;
  /** About this many bytes of heap go into one new segment (offloads). */
  segmentTargetBytes: number;
  /** Told of every segment committed (for metrics). */
  offloads?: OffloadObserver;
}
