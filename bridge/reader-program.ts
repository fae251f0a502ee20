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
 */
export function readerProgram(
  targets: readonly ReaderTarget[],
  segment: number,
  epoch: number,
): string {
  const [first, ...others] = targets.map((target) => fetchCommand(target, segment, epoch));
  if (first === undefined) {
    throw new Error(`pg-offload: no read endpoint to point segment ${segment} at`);
  }
  return [
    `${first}; rc=$?`,
    ...others.map((next) => `[ $rc -eq ${COULD_NOT_CONNECT} ] && { ${next}; rc=$?; }`),
    "[ $rc -eq 23 ] && kill -PIPE $$; exit $rc",
  ].join("; ");
}

/** curl's exit code when it could not connect: refused, or no socket at the path. */
const COULD_NOT_CONNECT = 7;

function fetchCommand(target: ReaderTarget, segment: number, epoch: number): string {
  const path = `/segments/${segment}/epochs/${epoch}`;
  const curl = "curl --silent --show-error --fail --connect-timeout 10";
  if (target.kind === "unix") {
    return `${curl} --unix-socket ${shellQuote(target.socketPath)} http://pg-offload${path}`;
  }
  const secret = `{ printf 'Authorization: Bearer '; cat ${shellQuote(target.secretFile)}; }`;
  const url = `http://${hostForUrl(target.host)}:${target.port}${path}`;
  return `${secret} | ${curl} -H @- ${shellQuote(url)}`;
}

/** Where segment readers (curl, on the database server) find the read endpoint. */
export type ReaderTarget =
  | { kind: "unix"; socketPath: string }
  | { kind: "tcp"; host: string; port: number; secretFile: string };

export function describeTarget(target: ReaderTarget): string {
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
