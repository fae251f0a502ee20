/**
 * The SQL API's functions as the CLI calls them, each statement's text beside a typed function
 * that sends it. The rule is bridge/catalog-calls.ts's: a call of one function is a constant here;
 * SQL that reads tables itself is a file in cli/queries/ (cliQuery(name)).
 */
import type pg from "pg";

const RUN = "SELECT offload.run($1::regclass) AS id;";

/** Queues an offload of `table` now (offload.run); returns the job's id. */
export async function queueOffload(client: pg.ClientBase, table: string): Promise<number> {
  const { rows } = await client.query(RUN, [table]);
  return Number(rows[0].id);
}

const LOAD_BACK = "SELECT offload.load_back($1::regclass, $2, $3) AS rows;";

/** Moves cold rows of `table` (between the keys from and to, when given) back; returns how many. */
export async function loadBack(
  client: pg.ClientBase,
  table: string,
  from: string | null,
  to: string | null,
): Promise<number> {
  const { rows } = await client.query(LOAD_BACK, [table, from, to]);
  return Number(rows[0].rows);
}

const VERIFY_SEGMENT = "SELECT * FROM offload.verify_segment($1);";

/** What offload.verify_segment found reading every chunk of one segment. */
export interface SegmentCheck {
  segment_id: string;
  segment_table: string;
  chunks: string;
  rows_expected: string;
  rows_read: string | null;
  ok: boolean;
  problem: string | null;
}

export async function verifySegment(
  client: pg.ClientBase,
  segmentId: number,
): Promise<SegmentCheck> {
  const { rows } = await client.query<SegmentCheck>(VERIFY_SEGMENT, [segmentId]);
  return rows[0]!;
}
