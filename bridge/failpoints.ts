/**
 * Named points in offloads, rewrites and reads where tests make the bridge die (SIGKILL itself), to prove that a
 * crash anywhere loses and duplicates nothing. Armed only through PGOFFLOAD_FAILPOINT, a
 * comma-separated list of names; a name with "@N" fires on its Nth hit.
 */
export type FailpointName =
  | "after-begin-segment"
  | "after-chunk-upload"
  | "before-commit"
  | "after-commit"
  | "before-swap"
  | "after-chunk-served";

const hits = new Map<string, number>();

export function failpoint(name: FailpointName): void {
  const armed = process.env.PGOFFLOAD_FAILPOINT;
  if (!armed) return;
  const count = (hits.get(name) ?? 0) + 1;
  hits.set(name, count);
  for (const spec of armed.split(",")) {
    const [armedName, nth] = spec.trim().split("@");
    if (armedName === name && count === Number(nth ?? 1)) {
      process.stderr.write(`pg-offload: failpoint ${spec} reached, killing the bridge\n`);
      process.kill(process.pid, "SIGKILL");
    }
  }
}
