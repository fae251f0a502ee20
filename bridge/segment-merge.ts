import { boundSegmentTables, setCommitLockTimeout } from "./catalog-calls.ts";
import { toError } from "./errors.ts";
import { failpoint } from "./failpoints.ts";
import type { JobContext } from "./job-context.ts";
import type { Logger } from "./log.ts";

/**
 * Keeps a table read through postgres_fdw within its bound of segment tables, once its offload
 * job has committed its segments (sql/functions/segment_merges.sql). One transaction, with the
 * commit's lock timeout: a timeout fails the job, whose retry finds nothing due and merges again.
 * Writes nothing to the store, so a crash at any point leaves either every merge or none.
 */
export async function mergeOverBound(
  ctx: JobContext,
  tableOid: number,
  log: Logger,
): Promise<number> {
  const client = await ctx.db.connect();
  let broken: Error | undefined;
  try {
    await client.query("BEGIN");
    await setCommitLockTimeout(client, ctx.commitLockTimeoutMs);
    failpoint("before-merge");
    const merged = await boundSegmentTables(client, tableOid);
    await client.query("COMMIT");
    failpoint("after-merge");
    if (merged > 0) log.info("segments merged to bound the segment tables", { segments: merged });
    return merged;
  } catch (error) {
    // A connection that cannot roll back is not handed to the next job.
    await client.query("ROLLBACK").catch((rollbackError) => {
      broken = toError(rollbackError);
    });
    throw error;
  } finally {
    client.release(broken);
  }
}
