/**
 * The shell command each segment table runs (file_fdw's `program` option) to read its rows: curl
 * against the bridge's read endpoint, measured at ~12 ms a scan against ~130 ms for a node script.
 *
 * The command is stored in the foreign table's options, which every database user can read, so it
 * never holds a secret: over a unix socket the socket's private directory is the protection; over
 * TCP the shell reads the secret from a file only the database's OS user can read and hands it to
 * curl on stdin (`-H @-`), so it is not even in curl's argument list.
 *
 * When PostgreSQL stops reading early (LIMIT), curl fails with "write error" (exit 23); file_fdw
 * accepts only death by SIGPIPE in that case, so the shell turns exit 23 into SIGPIPE.
 */
export function readerProgram(target: ReaderTarget, segment: number, epoch: number): string {
  const path = `/segments/${segment}/epochs/${epoch}`;
  const curl = "curl --silent --show-error --fail --connect-timeout 10";
  const onFailure = " || { rc=$?; [ $rc -eq 23 ] && kill -PIPE $$; exit $rc; }";
  if (target.kind === "unix") {
    return `${curl} --unix-socket ${shellQuote(target.socketPath)} http://pg-offload${path}${onFailure}`;
  }
  const secret = `{ printf 'Authorization: Bearer '; cat ${shellQuote(target.secretFile)}; }`;
  const url = `http://${hostForUrl(target.host)}:${target.port}${path}`;
  return `${secret} | ${curl} -H @- ${shellQuote(url)}${onFailure}`;
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
