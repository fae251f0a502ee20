/**
 * Progress of a long operation: on a terminal, one line redrawn in place (a bar, counts and
 * rates); otherwise a plain log line at most every `intervalMs`, so a log file gets a record
 * without a flood.
 */
import { bytesText } from "./text-table.ts";

export interface ProgressState {
  /** What is being done, e.g. "offload public.events". */
  label: string;
  done: number;
  /** Unknown until the work is planned. */
  total?: number;
  unit: string;
  rows: number;
  bytes: number;
}

export class Progress {
  private readonly started = performance.now();
  private lastLine = 0;
  private drawn = false;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly intervalMs = 10_000,
  ) {}

  update(state: ProgressState): void {
    if (this.out.isTTY) {
      this.out.write(`\r${this.describe(state)}\x1b[K`);
      this.drawn = true;
      return;
    }
    const now = performance.now();
    if (now - this.lastLine < this.intervalMs && this.lastLine !== 0) return;
    this.lastLine = now;
    this.out.write(`${new Date().toISOString()} ${this.describe(state)}\n`);
  }

  /** Ends the line (terminal), then prints the outcome if given. */
  finish(message?: string): void {
    if (this.drawn) this.out.write("\n");
    if (message !== undefined) this.out.write(`${message}\n`);
  }

  describe(state: ProgressState): string {
    const seconds = (performance.now() - this.started) / 1000;
    const rate = seconds > 0 ? state.rows / seconds : 0;
    const counts =
      `${state.rows.toLocaleString("en")} rows, ${bytesText(state.bytes)}, ` +
      `${Math.round(rate).toLocaleString("en")} rows/s, ${bytesText(state.bytes / Math.max(seconds, 0.001))}/s`;
    const of = state.total ? ` of ${state.total}` : "";
    return `${state.label}: ${bar(state.done, state.total)} ${state.done}${of} ${state.unit}, ${counts}, ${seconds.toFixed(0)} s`;
  }
}

function bar(done: number, total: number | undefined, width = 20): string {
  if (!total) return `[${"?".repeat(width)}]`;
  const filled = Math.min(width, Math.round((done / total) * width));
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
}
