/**
 * Log lines on stderr, with job, table and segment ids as fields: JSON, one object per line, for
 * log collectors; or plain text for a person at a terminal. PGOFFLOAD_LOG_FORMAT chooses; by
 * default text when stderr is a terminal, JSON otherwise.
 */
import { describeError } from "../storage/describe-error.ts";

export type LogFields = Record<string, unknown>;
export type LogFormat = "json" | "text";

export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

export function defaultLogFormat(): LogFormat {
  return process.stderr.isTTY ? "text" : "json";
}

export function createLogger(
  base: LogFields = {},
  write: (line: string) => void = (l) => process.stderr.write(l + "\n"),
  format: LogFormat = "json",
): Logger {
  const emit = (level: string, message: string, fields?: LogFields) => {
    const time = new Date().toISOString();
    const all = { ...base, ...fields };
    write(
      format === "json"
        ? JSON.stringify({ time, level, message, ...all }, errorsAsFields)
        : textLine(time, level, message, all),
    );
  };
  return {
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger({ ...base, ...fields }, write, format),
  };
}

function errorsAsFields(_key: string, value: unknown): unknown {
  return value instanceof Error
    ? { name: value.name, message: describeError(value), code: (value as { code?: string }).code }
    : value;
}

/** `12:01:02.345 WARN  store call failed; retrying  op=put key=... attempt=2` */
function textLine(time: string, level: string, message: string, fields: LogFields): string {
  const pairs = Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${textValue(value)}`);
  return [time.slice(11, 23), level.toUpperCase().padEnd(5), message, ...pairs].join("  ");
}

function textValue(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(describeError(value));
  if (typeof value === "string") return /[\s"=]/.test(value) ? JSON.stringify(value) : value;
  return JSON.stringify(value, errorsAsFields);
}

export const silentLogger: Logger = {
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};
