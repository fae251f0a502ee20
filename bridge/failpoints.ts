import { existsSync } from "node:fs";

/**
 * Named points at every step of every job kind (offload, rewrite, garbage collection) and of reads
 * where tests stop the bridge, to prove that a crash, a database restart or a lock timeout
 * anywhere loses, duplicates and repeats nothing. Armed only through
 * PGOFFLOAD_FAILPOINT, a comma-separated list of `name[@N][:pause]`: the bridge kills itself
 * (SIGKILL) at the Nth hit of the point (the first without @N), or with `:pause` stops there,
 * event loop and all, until the file named by PGOFFLOAD_FAILPOINT_RESUME exists.
 */
export type FailpointName =
  // any job: claimed, nothing done yet; all its work done, the job not yet marked succeeded
  | "after-claim"
  | "before-complete"
  // offload: pending segment recorded; a chunk stored; all stored, nothing committed; committed
  | "after-begin-segment"
  | "after-chunk-upload"
  | "before-commit"
  | "after-commit"
  // offload, then: the merge of segments over the table's bound begun (nothing merged); committed
  | "before-merge"
  | "after-merge"
  // rewrite: before a segment is read; all of its new epoch stored; swapped (progress not recorded)
  | "before-rewrite-segment"
  | "before-swap"
  | "after-swap"
  // garbage collection: an object deleted; all deleted, the catalog not yet told
  | "gc-after-delete"
  | "gc-before-forget"
  // reads
  | "after-chunk-served";

const hits = new Map<string, number>();

export function failpoint(name: FailpointName): void {
  const armed = process.env.PGOFFLOAD_FAILPOINT;
  if (!armed) return;
  const count = (hits.get(name) ?? 0) + 1;
  hits.set(name, count);
  for (const spec of armed.split(",").map((s) => s.trim())) {
    const [point = "", action] = spec.split(":");
    const [armedName, nth] = point.split("@");
    if (armedName !== name || count !== Number(nth ?? 1)) continue;
    if (action === "pause") {
      pauseUntilResumed(spec);
    } else {
      process.stderr.write(`pg-offload: failpoint ${spec} reached, killing the bridge\n`);
      process.kill(process.pid, "SIGKILL");
    }
  }
}

// Blocking on purpose: nothing of the bridge runs meanwhile, as if its machine had stalled.
function pauseUntilResumed(spec: string): void {
  const resumeFile = process.env.PGOFFLOAD_FAILPOINT_RESUME;
  if (!resumeFile) throw new Error(`failpoint ${spec}: set PGOFFLOAD_FAILPOINT_RESUME to a file`);
  process.stderr.write(`pg-offload: failpoint ${spec} reached, pausing\n`);
  const nap = new Int32Array(new SharedArrayBuffer(4));
  while (!existsSync(resumeFile)) Atomics.wait(nap, 0, 0, 50);
  process.stderr.write(`pg-offload: failpoint ${spec} resumed\n`);
}
