import { once } from "node:events";
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { crc32 } from "@node-rs/crc32";

/**
 * What the proxy does to a request instead of (or on top of) forwarding it:
 * - `http500`: 500 with S3's InternalError XML body;
 * - `http503`: 503 with a plain text body, as a load balancer in front of S3 answers;
 * - `slowDown`: 503 with S3's SlowDown XML body (S3's "reduce your request rate");
 * - `hang`: accepts the request and never answers (the client must time out);
 * - `reset`: destroys the connection with a TCP RST;
 * - `truncate`: a request with a body (a PUT) reaches the server cut in half and both connections
 *   are then dropped; otherwise the answer's headers go out with the full Content-Length, then
 *   half the body, then the connection is closed;
 * - `corrupt`: one byte in the middle of the body is flipped, request body if there is one (the
 *   server's Content-MD5 check sees it), else the answer's (the chunk CRC sees it);
 * - `corruptChecksummed`: as `corrupt`, but an answer also carries the x-amz-checksum-crc32 of its
 *   undamaged body, as AWS S3 in checksum mode and moto's server send: the SDK sees the damage
 *   before the chunk CRC does ("Checksum mismatch").
 */
export type FaultKind =
  | "http500"
  | "http503"
  | "slowDown"
  | "hang"
  | "reset"
  | "truncate"
  | "corrupt"
  | "corruptChecksummed";

export const FAULT_KINDS: readonly FaultKind[] = [
  "http500",
  "http503",
  "slowDown",
  "hang",
  "reset",
  "truncate",
  "corrupt",
  "corruptChecksummed",
];

/**
 * Which requests a fault hits. Examples: the 2nd PUT is `{ method: "PUT", skip: 1, times: 1 }`;
 * every GET of keys matching X is `{ method: "GET", key: X }`; the next 3 requests are
 * `{ times: 3 }`. Counting starts when the rule is armed and covers matching requests only.
 */
export interface FaultRule {
  fault: FaultKind;
  /** HTTP method, e.g. "PUT" or "GET"; any when unset. A listing is a GET with an empty key. */
  method?: string;
  /**
   * Tested against the key in the bucket (the path after the bucket, decoded, without the query):
   * a store's prefix is part of it.
   */
  key?: RegExp | ((key: string) => boolean);
  /** Let this many matching requests through first. Default 0. */
  skip?: number;
  /** Then fault this many. Default: every one until lifted. */
  times?: number;
  /**
   * For http500, http503, slowDown, hang and reset: forward the request and let the server do the
   * work, then fault the answer (a PUT stored, but its caller never hears so). Default false.
   */
  afterUpstream?: boolean;
}

/** An armed rule; `lift()` disarms it. */
export interface ArmedFault {
  readonly rule: FaultRule;
  /** Requests this rule has faulted so far. */
  readonly injected: number;
  lift(): void;
}

export interface ProxyCounts {
  /** Requests received, by method, and in all. */
  requests: number;
  byMethod: Record<string, number>;
  /** Faults injected, by kind, and in all. */
  faults: number;
  byKind: Partial<Record<FaultKind, number>>;
  /** Requests the proxy failed to forward, unasked: a test should expect none. */
  proxyErrors: string[];
}

export interface S3FaultProxy {
  /** Point the S3 client here (path-style) instead of at the server. */
  readonly endpoint: string;
  inject(rule: FaultRule): ArmedFault;
  /** Lifts every rule; counts stay. */
  clear(): void;
  counts(): ProxyCounts;
  /** Closes the proxy and every connection, hung ones included; safe to call twice. */
  close(): Promise<void>;
}

class Armed implements ArmedFault {
  seen = 0;
  injected = 0;
  lifted = false;
  constructor(readonly rule: FaultRule) {}

  lift(): void {
    this.lifted = true;
  }

  /** Counts a request against the rule; true when this one is to be faulted. */
  takes(method: string, key: string): boolean {
    const { rule } = this;
    if (this.lifted) return false;
    if (rule.method && rule.method.toUpperCase() !== method) return false;
    if (rule.key && !(typeof rule.key === "function" ? rule.key(key) : rule.key.test(key))) {
      return false;
    }
    this.seen++;
    if (this.seen <= (rule.skip ?? 0)) return false;
    if (this.injected >= (rule.times ?? Infinity)) return false;
    this.injected++;
    return true;
  }
}

/**
 * A fault-injecting HTTP proxy for tests, in front of an S3 server (s3rver): forwards every
 * request unchanged (the Host header too, so SigV4 signatures still verify) and, on requests chosen
 * by armed rules, injects one of FaultKind instead. Plain node:http; one process, no state
 * besides the rules and counts.
 */
export async function startS3FaultProxy(upstream: string): Promise<S3FaultProxy> {
  const target = new URL(upstream);
  const agent = new Agent({ keepAlive: true });
  const rules: Armed[] = [];
  const counts: ProxyCounts = {
    requests: 0,
    byMethod: {},
    faults: 0,
    byKind: {},
    proxyErrors: [],
  };
  const sockets = new Set<Socket>();

  const server: Server = createServer((req, res) => {
    const method = req.method ?? "GET";
    counts.requests++;
    counts.byMethod[method] = (counts.byMethod[method] ?? 0) + 1;
    const rule = rules.find((r) => r.takes(method, objectKeyOf(req.url ?? "/")));
    if (rule) {
      counts.faults++;
      counts.byKind[rule.rule.fault] = (counts.byKind[rule.rule.fault] ?? 0) + 1;
    }
    handle(req, res, rule?.rule).catch((error: unknown) => {
      // The proxy itself failed (the server went away?): the client sees a dropped connection,
      // which is a fault nobody armed, so it is counted for the test to check.
      counts.proxyErrors.push(`${method} ${req.url}: ${String(error)}`);
      req.socket.destroy();
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;

  async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    rule?: FaultRule,
  ): Promise<void> {
    const body = await readAll(req);
    if (!rule) return relay(res, await forward(req, body));
    switch (rule.fault) {
      case "truncate":
        if (body.length > 0) return truncateUpload(req, body);
        return truncateAnswer(res, await forward(req, body));
      case "corrupt":
        if (body.length > 0) return relay(res, await forward(req, flipMiddleByte(body)));
        return relay(res, await forward(req, body), flipMiddleByte);
      case "corruptChecksummed":
        if (body.length > 0) return relay(res, await forward(req, flipMiddleByte(body)));
        return relay(res, withChecksum(await forward(req, body)), flipMiddleByte);
      default:
        if (rule.afterUpstream) await forward(req, body);
        return answerWith(rule.fault, req, res);
    }
  }

  function forward(req: IncomingMessage, body: Buffer): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const out = httpRequest(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
          agent,
        },
        (answer) => {
          readAll(answer).then(
            (answerBody) =>
              resolve({
                status: answer.statusCode ?? 502,
                headers: answer.headers,
                body: answerBody,
              }),
            reject,
          );
        },
      );
      out.on("error", reject);
      out.end(body);
    });
  }

  /** Sends half the upload to the server, then drops both connections mid-request. */
  function truncateUpload(req: IncomingMessage, body: Buffer): void {
    const out = httpRequest({
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: req.headers,
      // A connection of its own: it is destroyed mid-request.
      agent: false,
    });
    out.on("error", () => {});
    out.write(body.subarray(0, Math.floor(body.length / 2)), () => {
      out.destroy();
      req.socket.resetAndDestroy();
    });
  }

  return {
    endpoint: `http://127.0.0.1:${port}`,
    inject(rule) {
      const armed = new Armed(rule);
      rules.push(armed);
      return armed;
    },
    clear() {
      for (const rule of rules.splice(0)) rule.lift();
    },
    counts: () => structuredClone(counts),
    async close() {
      if (!server.listening) return;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      agent.destroy();
      await closed;
    },
  };
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function relay(
  res: ServerResponse,
  answer: Answer,
  alter: (body: Buffer) => Buffer = (b) => b,
): void {
  res.writeHead(answer.status, answer.headers);
  res.end(answer.body.length > 0 ? alter(answer.body) : answer.body);
}

/** The full Content-Length goes out, then half the body, then the connection closes. */
function truncateAnswer(res: ServerResponse, answer: Answer): void {
  // Framed by length, whatever framing the server chose: a chunked answer cannot be cut this way.
  const headers = { ...answer.headers, "content-length": String(answer.body.length) };
  delete headers["transfer-encoding"];
  res.writeHead(answer.status, headers);
  res.write(answer.body.subarray(0, Math.floor(answer.body.length / 2)), () => res.destroy());
}

function answerWith(fault: FaultKind, req: IncomingMessage, res: ServerResponse): void {
  switch (fault) {
    case "http500":
      return xmlError(
        res,
        500,
        "InternalError",
        "We encountered an internal error. Please try again.",
      );
    case "http503":
      res.writeHead(503, { "content-type": "text/plain" }).end("Service Unavailable\n");
      return;
    case "slowDown":
      return xmlError(res, 503, "SlowDown", "Please reduce your request rate.");
    case "hang":
      return; // The socket stays open until the client gives up or the proxy closes.
    case "reset":
      req.socket.resetAndDestroy();
      return;
    default:
      throw new Error(`s3-fault-proxy: ${fault} is not an answer`);
  }
}

/** The error body S3 sends (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html). */
function xmlError(res: ServerResponse, status: number, code: string, message: string): void {
  const body =
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
    `<Message>${message}</Message><RequestId>FAULTPROXY</RequestId>` +
    `<HostId>s3-fault-proxy</HostId></Error>`;
  res.writeHead(status, {
    "content-type": "application/xml",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

/** The answer with the x-amz-checksum-crc32 header S3 sends for its body when asked to. */
function withChecksum(answer: Answer): Answer {
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(answer.body));
  return {
    ...answer,
    headers: { ...answer.headers, "x-amz-checksum-crc32": crc.toString("base64") },
  };
}

function flipMiddleByte(body: Buffer): Buffer {
  const copy = Buffer.from(body);
  copy[Math.floor(copy.length / 2)]! ^= 0x01;
  return copy;
}

/** The object key of a path-style URL: `/bucket/a/b?x` is `a/b`, `/bucket?list-type=2` is "". */
function objectKeyOf(url: string): string {
  const path = url.split("?")[0] ?? "";
  const slash = path.indexOf("/", 1);
  return slash < 0 ? "" : decodeURIComponent(path.slice(slash + 1));
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}
