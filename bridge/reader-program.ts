/**
 * The shell command each segment table runs (file_fdw's `program` option) to read its rows: curl
 * against the bridge's read endpoint, measured at ~12 ms a scan against ~130 ms for a node script.
 *
 * When PostgreSQL stops reading early (LIMIT), curl fails with "write error" (exit 23); file_fdw
 * accepts only death by SIGPIPE in that case, so the shell turns exit 23 into SIGPIPE.
 */
export function readerProgram(
  endpoint: ReadEndpointAddress,
  segment: number,
  epoch: number,
): string {
  const url = `http://${endpoint.host}:${endpoint.port}/segments/${segment}/epochs/${epoch}`;
  return (
    `curl --silent --show-error --fail --connect-timeout 10 ${url}` +
    " || { rc=$?; [ $rc -eq 23 ] && kill -PIPE $$; exit $rc; }"
  );
}

export interface ReadEndpointAddress {
  host: string;
  port: number;
}
