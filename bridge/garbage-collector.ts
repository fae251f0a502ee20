import type pg from "pg";
import { objectKey } from "../storage/object-key.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import { toError } from "./errors.ts";
import { failpoint } from "./failpoints.ts";
import { gcForget, gcPrepare, gcSegments } from "./catalog-calls.ts";

export interface GcOptions {
  /** Objects of retired segments and epochs stay this long, for scans planned before. */
  graceMs: number;
  /** A pending segment whose job has not heartbeated for this long is an abandoned attempt. */
  leaseMs: number;
  /** List what would be removed, remove nothing, change no catalog row. */
  dryRun: boolean;
}

export interface GcCandidate {
  key: string;
  size: number;
  reason: string;
}

export interface GcReport {
  listed: number;
  candidates: GcCandidate[];
  deleted: number;
  /** Objects under this installation's prefix that pg-offload did not name: never touched. */
  unrecognised: number;
}

interface SegmentState {
  state: string;
  collectable: boolean;
  live: Set<string>;
}

// <installation>/s<segment>-<random>/e<epoch>/<seq>.chunk, as copy-to-store.ts names them.
const KEY_PATTERN = /^[^/]+\/s(\d+)-[0-9a-f]+\/e\d+\/\d+\.chunk$/;

/**
 * Removes objects that nothing will read again: those of abandoned attempts, of segments loaded
 * back or whose table was dropped, of epochs replaced by a rewrite (each after the grace period),
 * and objects no catalog row knows. Never an object a committed segment references.
 *
 * The store is listed before the catalog is read: every listed object's segment row was committed
 * before its upload began, so an object of a write in progress is always known as pending.
 */
export async function collectGarbage(
  db: pg.Pool,
  store: ObjectStore,
  installationId: string,
  options: GcOptions,
): Promise<GcReport> {
  const listed = [];
  for await (const object of store.list(`${installationId}/`)) listed.push(object);

  const client = await db.connect();
  try {
    await client.query("BEGIN");
    await gcPrepare(client, options.leaseMs);
    const segments = await segmentStates(client, options.graceMs);
    // A merge moves chunks to another segment without renaming their objects: a key is live
    // when any segment references it, whichever segment its name says wrote it.
    const live = new Set([...segments.values()].flatMap((s) => [...s.live]));
    const report: GcReport = { listed: listed.length, candidates: [], deleted: 0, unrecognised: 0 };
    for (const { key, size } of listed) {
      const match = KEY_PATTERN.exec(key);
      if (!match) {
        report.unrecognised++;
        continue;
      }
      const reason = live.has(key) ? undefined : garbageReason(segments.get(Number(match[1])));
      if (reason) report.candidates.push({ key, size, reason });
    }
    if (options.dryRun) {
      await client.query("ROLLBACK");
      return report;
    }
    for (const candidate of report.candidates) {
      await store.delete(objectKey(candidate.key));
      report.deleted++;
      failpoint("gc-after-delete");
    }
    failpoint("gc-before-forget");
    const collected = [...segments].filter(([, s]) => s.collectable && s.state !== "committed");
    await gcForget(
      client,
      options.graceMs,
      collected.map(([id]) => id),
    );
    await client.query("COMMIT");
    return report;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw toError(error);
  } finally {
    client.release();
  }
}

async function segmentStates(client: pg.ClientBase, graceMs: number) {
  const segments = new Map<number, SegmentState>();
  for (const row of await gcSegments(client, graceMs)) {
    segments.set(Number(row.segment_id), {
      state: row.state,
      collectable: row.collectable,
      live: new Set(row.live_keys),
    });
  }
  return segments;
}

/** Why an object no segment references is garbage, going by the segment that wrote it. */
function garbageReason(segment: SegmentState | undefined): string | undefined {
  if (!segment) return "no catalog row knows its segment";
  if (segment.state === "pending" || !segment.collectable) return undefined;
  switch (segment.state) {
    case "aborted":
      return "abandoned offload attempt";
    case "retired":
      return "segment loaded back, merged, or its table dropped";
    default:
      return "not in the segment's current epoch (replaced by a rewrite, or a failed rewrite)";
  }
}
