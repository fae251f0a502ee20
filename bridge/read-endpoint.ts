import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type pg from "pg";
import { ChunkFetcher, SegmentReadError, type IndexedChunk } from "./chunk-fetcher.ts";
import type { ChunkCache } from "../storage/chunk-cache.ts";
import type { ChunkKeyring } from "../storage/chunk-keys.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import { idempotentQuery } from "./db.ts";
import { readAhead } from "./read-ahead.ts";
import { carriesSecret } from "./endpoint-access.ts";
import { listening } from "./http-listen.ts";
import { describeError } from "../storage/describe-error.ts";
import { toError } from "./errors.ts";
import { MORE_FIELDS_THAN_ANY_TABLE } from "./reader-program.ts";
import { failpoint } from "./failpoints.ts";
import { columnMapper, type ReadPlan } from "./column-mapper.ts";
import type { Logger } from "./log.ts";
import type { ScanObserver } from "./metrics.ts";
import { query } from "./sql-files.ts";

interface ChunkRow extends IndexedChunk {
  table_name: string;
  state: string;
  segment_rows: string | null;
  read_plan: ReadPlan | null;
  /** offload.verify() is reading the segment: the cache is neither read nor filled. */
  from_store: boolean;
  seq: number | null;
}

export interface ReadEndpointOptions {
  /** The keys encrypted chunks are read with. */
  keys: ChunkKeyring;
  /** With a secret, every request must carry it (TCP); without, the socket's directory guards it. */
  secret?: Buffer;
  /** Chunks of a segment fetched ahead of the one streaming (memory: this + 1 chunks a scan). */
  readAheadChunks: number;
  /** Chunks read before (or written by this bridge's offloads) are served from here. */
  cache: ChunkCache;
  /** Told of every scan served: its outcome, duration and bytes (for metrics). */
  observer?: ScanObserver;
}

/**
 * Serves a segment's rows as COPY text: looks its chunks up in the virtual index, fetches each from
 * the store, verifies it and streams it with backpressure.
 *
 * Once the 200 status is sent, the only way to fail the query is through the data. On any error
 * the endpoint sends one more line holding the message followed by more fields than any table
 * has: COPY then fails with "extra data after last expected column" and its CONTEXT line shows
 * our message (PostgreSQL prints the first 100 bytes of the line). The connection is then cut so
 * curl fails too. Rows already sent are never the whole answer: the query fails.
 */
export class ReadEndpoint {
  private readonly server: Server;

  private readonly chunks: ChunkFetcher;
  private readonly secret?: Buffer;
  private readonly readAheadChunks: number;
  private readonly observer?: ScanObserver;
  /** Aborted when the bridge stops and the scans still running have had their time. */
  private readonly stopping = new AbortController();
  /** The answers being streamed, so that a forced stop can fail each with its message. */
  private readonly serving = new Set<ServerResponse>();

  constructor(
    private readonly db: pg.Pool,
    private readonly store: ObjectStore,
    private readonly log: Logger,
    options: ReadEndpointOptions,
  ) {
    this.chunks = new ChunkFetcher(store, options.cache, options.keys, log);
    this.secret = options.secret;
    this.readAheadChunks = options.readAheadChunks;
    this.observer = options.observer;
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error) => {
        this.log.error("read endpoint failure", { error });
        res.destroy();
      });
    });
    // Errors after it listens (accept failures): logged, never the end of the bridge.
    this.server.on("error", (error) => this.log.error("read endpoint error", { error }));
  }

  async listenOnTcp(host: string, port: number): Promise<AddressInfo> {
    await listening(this.server, () => this.server.listen(port, host));
    return this.server.address() as AddressInfo;
  }

  async listenOnSocket(path: string): Promise<void> {
    await listening(this.server, () => this.server.listen(path));
  }

  /**
   * Stops taking requests, gives the scans being served `graceMs` to finish, then fails the rest
   * with a message saying why (a query must never end short and look complete).
   */
  async close(graceMs = 0): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const cutOff = setTimeout(() => {
      this.stopping.abort();
      // A reader that stopped reading would hold the stop forever: cut it after a while.
      setTimeout(() => this.server.closeAllConnections(), 10_000).unref();
    }, graceMs);
    await closed;
    clearTimeout(cutOff);
  }

  /**
   * Fails every scan being served now, each with the message that the bridge stopped, and
   * resolves once those lines are written (a forced stop: the process exits next). Cut off
   * without it, a scan's last line arrives half-written and PostgreSQL fails the query with
   * "missing data for column" instead of saying why.
   */
  async failScansNow(): Promise<void> {
    this.stopping.abort();
    await Promise.all(
      [...this.serving].map((res) => (res.closed ? undefined : once(res, "close"))),
    );
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.secret && !carriesSecret(req.headers.authorization, this.secret)) {
      this.log.warn("read request without the secret refused", {
        from: req.socket.remoteAddress,
        url: req.url,
      });
      res.writeHead(401).end("pg-offload: this endpoint serves the database server only\n");
      return;
    }
    const match = /^\/segments\/(\d+)\/epochs\/(\d+)$/.exec(req.url ?? "");
    if (req.method !== "GET" || !match) {
      res.writeHead(404).end("not found\n");
      return;
    }
    const segment = Number(match[1]);
    const epoch = Number(match[2]);
    const aborted = new AbortController();
    res.on("close", () => {
      aborted.abort();
      this.serving.delete(res);
    });
    this.serving.add(res);
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
    const started = performance.now();
    const sent = { bytes: 0 };
    const report = (outcome: "ok" | "error" | "cancelled") =>
      this.observer?.served(outcome, (performance.now() - started) / 1000, sent.bytes);
    try {
      const signal = AbortSignal.any([aborted.signal, this.stopping.signal]);
      await this.streamSegment(segment, epoch, res, signal, sent);
      res.end();
      report("ok");
    } catch (thrown) {
      // PostgreSQL stopped reading (LIMIT, cancel): not an error.
      if (aborted.signal.aborted) return report("cancelled");
      report("error");
      const error = this.stopping.signal.aborted
        ? new Error(
            `pg-offload: the bridge stopped while serving segment ${segment}; run the query again`,
          )
        : toError(thrown);
      this.log.error("segment read failed", { segment, epoch, error });
      res.end(poisonLine(describeError(error)), () => res.destroy());
    }
  }

  private async streamSegment(
    segment: number,
    epoch: number,
    res: ServerResponse,
    signal: AbortSignal,
    sent: { bytes: number },
  ): Promise<void> {
    const { rows } = await idempotentQuery<ChunkRow>(this.db, query("segment-chunks"), [
      segment,
      epoch,
    ]);
    const first = rows[0];
    if (!first) throw new SegmentReadError("segment not in the catalog", "unknown", segment);
    if (first.state !== "committed") {
      throw new SegmentReadError(`segment is ${first.state}`, first.table_name, segment);
    }
    if (Number(first.segment_rows) === 0) return; // an offloaded empty partition
    // Columns added, dropped or renamed since the rows were written: map them to today's.
    const mapColumns = columnMapper(first.read_plan);
    if (rows.some((chunk) => chunk.object_key === null)) {
      throw new SegmentReadError(`no chunks for epoch ${epoch}`, first.table_name, segment);
    }
    const fetchChunk = (chunk: ChunkRow) =>
      this.chunks.fetch(first.table_name, segment, chunk, signal).then((raw) => ({ chunk, raw }));
    for await (const { chunk, raw } of readAhead(rows, this.readAheadChunks, fetchChunk)) {
      const served = mapColumns
        ? this.mapChunk(mapColumns, raw, first.table_name, segment, chunk)
        : raw;
      sent.bytes += served.length;
      if (!res.write(served)) await once(res, "drain", { signal });
      failpoint("after-chunk-served");
    }
  }

  private mapChunk(
    mapColumns: (raw: Buffer) => Buffer,
    raw: Buffer,
    table: string,
    segment: number,
    chunk: ChunkRow,
  ): Buffer {
    try {
      return mapColumns(raw);
    } catch (error) {
      throw new SegmentReadError(
        describeError(error),
        table,
        segment,
        chunk.object_key ?? undefined,
        {
          cause: error,
        },
      );
    }
  }
}

export function poisonLine(message: string): string {
  const oneLine = message.replace(/[\t\r\n\\]/g, " ");
  return `${oneLine}${"\t".repeat(MORE_FIELDS_THAN_ANY_TABLE)}\n`;
}
