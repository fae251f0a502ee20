import { setTimeout as sleep } from "node:timers/promises";

/**
 * Polls `check` until it holds. On timeout the error carries `context()` (say, a bridge's output),
 * which is what one needs to see why the condition never came.
 */
export async function waitUntil(
  check: () => Promise<boolean>,
  options: { timeoutMs?: number; context?: () => string } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  while (!(await check())) {
    if (Date.now() > deadline) {
      const context = options.context?.();
      throw new Error(`condition not reached in time${context ? `:\n${context}` : ""}`);
    }
    await sleep(100);
  }
}
