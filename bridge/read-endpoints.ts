import type pg from "pg";
import { toError } from "./errors.ts";
import type { Logger } from "./log.ts";
import { describeTarget, readerProgram, type ReaderTarget } from "./reader-program.ts";
import {
  lockEndpointRepointing,
  lockReadEndpointsShared,
  pointRemoteServers,
  registerReadEndpoint,
  repointSegment,
  unlockEndpointRepointing,
} from "./catalog-calls.ts";
import { query } from "./sql-files.ts";

/** Builds the reader program a segment table gets when a job commits it. */
export interface ReaderPrograms {
  /**
   * Call inside the transaction that commits the program (`client`), as late as possible: it
   * takes a lock there that keeps a bridge starting meanwhile from being left out of the program.
   */
  forCommit(client: pg.ClientBase, segment: number, epoch: number): Promise<string>;
}

/**
 * The read endpoints of all the bridges of a database, recorded in offload.read_endpoints
 * (sql/functions/reads.sql), and the segment tables' reader programs that name them all, so
 * that cold reads go on while any one bridge runs.
 *
 * A bridge records its endpoint when it starts and repoints every segment table at the whole
 * list. While it runs it renews its row; one not renewed for `staleAfterMs` is forgotten when
 * another bridge starts (a bridge that died), and a bridge that finds its own row forgotten (it
 * stalled that long) records it and repoints again. A graceful stop removes the row.
 * A table still naming a bridge that is gone costs its scans one refused connection each.
 */
export class ReadEndpointRegistry implements ReaderPrograms {
  private readonly name: string;
  private renewal: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: pg.Pool,
    /** This bridge's read endpoint, and its SQL endpoint when it runs one (postgres_fdw's). */
    private readonly own: ReaderTarget & { sql?: { host: string; port: number; tls: boolean } },
    private readonly workerId: string,
    private readonly staleAfterMs: number,
    private readonly log: Logger,
  ) {
    this.name = describeTarget(own);
  }

  /** Records this bridge's endpoint and points every committed segment table at the list. */
  async join(): Promise<void> {
    const client = await this.db.connect();
    let broken: Error | undefined;
    try {
      await lockEndpointRepointing(client);
      try {
        await registerReadEndpoint(client, {
          name: this.name,
          target: this.own,
          workerId: this.workerId,
          staleAfterMs: this.staleAfterMs,
        });
        await this.repointSegmentTables(client, await this.targets());
      } finally {
        await unlockEndpointRepointing(client).catch((error) => {
          // A session lock is released with its connection: drop the connection, not the lock.
          broken = toError(error);
        });
      }
    } finally {
      client.release(broken);
    }
  }

  /** Keeps this bridge's row from being forgotten; records it again if it was. One at a time. */
  renew(): Promise<void> {
    // The previous renewal's failure was its caller's to report; this one runs regardless.
    this.renewal = this.renewal
      .catch(() => undefined)
      .then(async () => {
        const { rowCount } = await this.db.query(query("renew-read-endpoint"), [
          this.name,
          this.workerId,
        ]);
        if (rowCount === 0) {
          this.log.warn("read endpoint was forgotten (not renewed in time); recording it again", {
            endpoint: this.name,
          });
          await this.join();
        }
      });
    return this.renewal;
  }

  /** At a graceful stop: new segment tables stop naming this endpoint. */
  async leave(): Promise<void> {
    await this.renewal.catch(() => {});
    await this.db.query(query("forget-read-endpoint"), [this.name, this.workerId]);
  }

  async forCommit(client: pg.ClientBase, segment: number, epoch: number): Promise<string> {
    await lockReadEndpointsShared(client);
    // Read on another connection: the commit's own transaction may hold an older snapshot
    // (REPEATABLE READ) that does not show an endpoint recorded since.
    return readerProgram(await this.targets(), segment, epoch);
  }

  /**
   * Every recorded endpoint, in a fixed order (by name), so that a bridge restarting on the same
   * endpoint finds every program already as it should be and alters no segment table.
   */
  private async targets(): Promise<ReaderTarget[]> {
    const { rows } = await this.db.query<{ endpoint: string; target: ReaderTarget }>(
      query("read-endpoints"),
    );
    const targets = rows.map((row) => row.target);
    // Recorded by join() before any program is built; a renewal that lost it records it again.
    if (!rows.some((row) => row.endpoint === this.name)) targets.push(this.own);
    return targets;
  }

  private async repointSegmentTables(client: pg.ClientBase, targets: ReaderTarget[]) {
    const servers = await pointRemoteServers(client);
    if (servers) this.log.info("postgres_fdw servers repointed at the SQL endpoints", { servers });
    const { rows } = await client.query(query("committed-segment-tables"));
    let changed = 0;
    for (const row of rows) {
      const id = Number(row.id);
      const program = readerProgram(targets, id, row.epoch);
      if (await repointSegment(client, { id, epoch: row.epoch, program })) changed++;
    }
    if (changed) {
      this.log.info("segment tables repointed at the read endpoints", {
        segments: changed,
        endpoints: targets.map(describeTarget),
      });
    }
  }
}
