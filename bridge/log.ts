/** Structured log lines (JSON) on stderr, with job, table and segment ids as fields. */
export type LogFields = Record<string, unknown>;

export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

export function createLogger(
  base: LogFields = {},
  write: (line: string) => void = (l) => process.stderr.write(l + "\n"),
): Logger {
  const emit = (level: string, message: string, fields?: LogFields) =>
    write(
      JSON.stringify(
        { time: new Date().toISOString(), level, message, ...base, ...fields },
        (_k, v) =>
          v instanceof Error
            ? { name: v.name, message: v.message, code: (v as { code?: string }).code }
            : v,
      ),
    );
  return {
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger({ ...base, ...fields }, write),
  };
}

export const silentLogger: Logger = {
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};
