/**
 * The shell command each segment table runs (file_fdw's `program` option) to read its rows: curl
 * against a bridge's read endpoint, measured at ~12 ms a scan against ~130 ms for a node script.
 *
 * With several bridges the command names every endpoint recorded (bridge/read-endpoints.ts) and
 * tries them in turn. It goes on to the next only when curl could not connect (exit 7): nothing
 * was sent and nothing written to PostgreSQL yet. Any other failure (an HTTP error, a transfer cut
 * short after rows went out) ends the scan, since trying elsewhere could hand rows over twice.
 *
 * The command is stored in the foreign table's options, which every database user can read, so it
 * never holds a secret: over a unix socket the socket's private directory is the protection; over
 * TCP the shell reads the secret from a file only the database's OS user can read and hands it to
 * curl on stdin (`-H @-`), so it is not even in curl's argument list. Every word in it comes from
 * bridges' settings, none from a database user.
 *
 * When PostgreSQL stops reading early (LIMIT), curl fails with "write error" (exit 23); file_fdw
 * accepts only death by SIGPIPE in that case, so the shell turns exit 23 into SIGPIPE.
 *
 * Over TCP a refused secret would otherwise show only as "exit code 22" (curl's --fail, which
 * must stay: it keeps an HTTP error page from being read as rows). So curl writes the body to the
 * shell's stdout through fd 3 and the HTTP status to the shell, and on a 401 the shell prints a
 * line COPY cannot parse (see poisonLine in read-endpoint.ts) that says so: PostgreSQL's error
 * then names the problem. Plain POSIX sh and any curl (no --fail-with-body, which needs 7.76).
 */
export function readerProgram(
  targets: readonly ReaderTarget[],
  segment: number,
  epoch: number,
): string {
  const [first, ...others] = targets.flatMap((target) =>
    target.kind === "none" ? [] : [fetchCommand(target, segment, epoch)],
  );
  // Only in a database without file_fdw, whose segment tables never run a program.
  if (first === undefined) return `echo ${shellQuote(NO_FILE_READER)} >&2; exit 1`;
  return [
    `${first}; rc=$?`,
    ...others.map((next) => `[ $rc -eq ${COULD_NOT_CONNECT} ] && { ${next}; rc=$?; }`),
    "[ $rc -eq 23 ] && kill -PIPE $$; exit $rc",
  ].join("; ");
}

/** curl's exit code when it could not connect: refused, or no socket at the path. */
const COULD_NOT_CONNECT = 7;

function fetchCommand(
  target: Exclude<ReaderTarget, { kind: "none" }>,
  segment: number,
  epoch: number,
): string {
  const path = `/segments/${segment}/epochs/${epoch}`;
  const curl = "curl --silent --show-error --fail --connect-timeout 10";
  if (target.kind === "unix") {
    return `${curl} --unix-socket ${shellQuote(target.socketPath)} http://pg-offload${path}`;
  }
  const secret = `{ printf 'Authorization: Bearer '; cat ${shellQuote(target.secretFile)}; }`;
  const url = `http://${hostForUrl(target.host)}:${target.port}${path}`;
  // Ends with curl's exit status, as the unix-socket command does, for the failover chain.
  const refused =
    ` [ "$status" = 401 ] && printf '%s' ${shellQuote(SECRET_REFUSED)}` +
    ` && printf '%${MORE_FIELDS_THAN_ANY_TABLE}s\\n' '' | tr ' ' '\\t';`;
  return (
    `{ exec 3>&1; status=$(${secret} | ${curl} -H @- -o /dev/fd/3 -w '%{http_code}' ${shellQuote(url)});` +
    ` rc=$?; [ $rc -ne 0 ] &&${refused} (exit $rc); }`
  );
}

// What PostgreSQL shows when the read endpoint refuses the reader's secret. Object and cause
// first: PostgreSQL shows only the first 100 bytes of the line.
export const SECRET_REFUSED =
  "pg-offload: the read endpoint refused this reader: wrong or missing secret (see the bridge log)";

const NO_FILE_READER = "pg-offload: no bridge serves the file reader in this database";

// PostgreSQL's column limit: a line of more tab-separated fields than this never fits a table.
export const MORE_FIELDS_THAN_ANY_TABLE = 1600;

/** Where segment readers (curl, on the database server) find the read endpoint. */
export type ReaderTarget =
  | { kind: "unix"; socketPath: string }
  | { kind: "tcp"; host: string; port: number; secretFile: string }
  // A bridge of a database without file_fdw (the managed profile): it serves postgres_fdw only.
  | { kind: "none"; worker: string };

export function describeTarget(target: ReaderTarget): string {
  if (target.kind === "none") return `no-file-reader:${target.worker}`;
  return target.kind === "unix"
    ? `unix:${target.socketPath}`
    : `http://${hostForUrl(target.host)}:${target.port}`;
}

/** Single-quotes a word for /bin/sh: nothing inside single quotes is special but the quote. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

function hostForUrl(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}
