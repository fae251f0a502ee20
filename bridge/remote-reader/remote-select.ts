/**
 * Answers one SELECT postgres_fdw sends, exactly as PostgreSQL would, from a segment's chunks
 * (ColdData.select, estimate and relationSize; authorize is the caller's).
 *
 * Every condition and expression is evaluated by PostgreSQL, on the bridge's pool, over the
 * chunks' rows decoded as the table's column types (evaluation-sql.ts), in a read-only
 * transaction under postgres_fdw's session settings (evaluation-session.ts). The statement is
 * validated against an allowlist first (select-validator.ts, catalog-checks.ts).
 *
 * The simple scan (one relation; plain columns or NULL; optional WHERE) streams chunk by chunk,
 * in batches; without WHERE it skips PostgreSQL and returns the stored text (see
 * `storedTextIsExact`). Any other shape is evaluated once over every candidate chunk, up to
 * `maxRawBytes`.
 */
import type pg from "pg";
import {
  ColdReadError,
  type AuthorizedTable,
  type PlanEstimate,
  type RelationSize,
  type RemoteRelationName,
  type RemoteSelect,
  type ResultColumn,
  type SelectResult,
  type SessionSettings,
} from "./cold-data.ts";
import { SkipPlanner } from "./block-skipping.ts";
import { CatalogChecks } from "./catalog-checks.ts";
import { parseCopyText, type CopyRow } from "../copy-text.ts";
import {
  evaluationSql,
  relationInputs,
  storedTextExact,
  type EvaluationSql,
  type RelationInput,
} from "./evaluation-sql.ts";
import { inSession, RAW_TYPES } from "./evaluation-session.ts";
import { nodeOf, parseSelect, type Fields } from "./parse-tree.ts";
import type { ChunkSource, SegmentCatalog, SegmentChunk, SegmentShape } from "./segment-source.ts";
import { validateSelect, type ValidatedSelect } from "./select-validator.ts";

/** What one statement read, for metrics. */
export interface ScanStats {
  table: string;
  segments: number[];
  chunksTotal: number;
  chunksSkipped: number;
  chunksFetched: number;
  bytesFetched: number;
  /** Chunks returned as stored, without evaluation (no WHERE, or proven wholly matching). */
  chunksAsStored: number;
  /** True when the block statistics could not be evaluated (every chunk was read). */
  skippingFailed: boolean;
  streamed: boolean;
  /** How the scan ended: cancelled when the reader stopped early (a LIMIT, a cancel). */
  outcome: "ok" | "error" | "cancelled";
  seconds: number;
}

export interface RemoteSelectOptions {
  /** Raw COPY bytes a non-streaming shape may evaluate at once (default 256 MiB). */
  maxRawBytes?: number;
  /** Rows per evaluation of the simple scan (default 5000). */
  batchRows?: number;
  /** COPY bytes per evaluation of the simple scan (default 8 MiB). */
  batchBytes?: number;
  /** statement_timeout of each evaluation (default 5 minutes). */
  statementTimeoutMs?: number;
  /** Fraction of rows a remaining condition keeps, for estimates (default 0.1). */
  defaultSelectivity?: number;
  /** Called once per statement when its chunks have been read (or the read stopped). */
  observer?: (stats: ScanStats) => void;
}

interface Prepared {
  v: ValidatedSelect;
  shapes: SegmentShape[];
  inputs: RelationInput[];
  evaluation: EvaluationSql;
  /** Per relation, the chunks to read (in seq order). */
  candidates: SegmentChunk[][];
  skippingFailed: boolean;
  /** Seqs of the chunks the statistics prove wholly matching (single relation only). */
  wholeChunks: Set<number>;
  columns: ResultColumn[];
}

export class RemoteSelectRunner {
  private readonly checks: CatalogChecks;
  private readonly maxRawBytes: number;
  private readonly batchRows: number;
  private readonly batchBytes: number;
  private readonly statementTimeoutMs: number;
  private readonly selectivity: number;

  constructor(
    private readonly pool: pg.Pool,
    private readonly catalog: SegmentCatalog,
    private readonly chunks: ChunkSource,
    private readonly options: RemoteSelectOptions = {},
  ) {
    this.checks = new CatalogChecks(pool);
    this.maxRawBytes = options.maxRawBytes ?? 256 * 1024 * 1024;
    this.batchRows = options.batchRows ?? 5000;
    this.batchBytes = options.batchBytes ?? 8 * 1024 * 1024;
    this.statementTimeoutMs = options.statementTimeoutMs ?? 300_000;
    this.selectivity = options.defaultSelectivity ?? 0.1;
  }

  async select(
    table: AuthorizedTable,
    query: RemoteSelect,
    settings: SessionSettings,
    signal: AbortSignal,
  ): Promise<SelectResult> {
    const p = await this.prepare(table, query, settings, true);
    const stats: ScanStats = {
      table: table.table,
      segments: p.shapes.map((s) => s.segment),
      chunksTotal: p.shapes.reduce((n, s) => n + s.chunks.length, 0),
      chunksSkipped: 0,
      chunksFetched: 0,
      bytesFetched: 0,
      chunksAsStored: 0,
      skippingFailed: p.skippingFailed,
      streamed: p.v.simple !== undefined,
      outcome: "cancelled",
      seconds: performance.now(),
    };
    stats.chunksSkipped = stats.chunksTotal - p.candidates.reduce((n, c) => n + c.length, 0);
    if (p.v.simple)
      return { columns: p.columns, rows: this.stream(p, query, settings, signal, stats) };
    const bytes = p.candidates.flat().reduce((n, c) => n + c.rawBytes, 0);
    if (bytes > this.maxRawBytes)
      throw new ColdReadError(
        `this statement (ORDER BY, LIMIT, aggregates, DISTINCT or a join) needs ${bytes} bytes of cold rows evaluated at once, more than the reader's limit of ${this.maxRawBytes}: add conditions on the table's key columns, or let the local server do the sorting, aggregating and joining (postgres_fdw options use_remote_estimate/fdw_tuple_cost, or disable enable_partitionwise_aggregate and the join pushdown), or raise the limit`,
        "54000",
      );
    return { columns: p.columns, rows: this.evaluateAll(p, query, settings, signal, stats) };
  }

  async estimate(table: AuthorizedTable, query: RemoteSelect): Promise<PlanEstimate> {
    const p = await this.prepare(table, query, new Map(), false);
    const chunks = p.candidates.flat();
    const bytes = chunks.reduce((n, c) => n + c.rawBytes, 0);
    let rows = chunks.reduce((n, c) => n + c.rows, 0);
    if (p.v.select.whereClause !== undefined) rows = Math.ceil(rows * this.selectivity);
    const segmentRows = p.shapes.reduce((n, s) => n + s.rows, 0);
    const segmentBytes = p.shapes.reduce((n, s) => n + s.rawBytes, 0);
    const width = segmentRows > 0 ? Math.ceil(segmentBytes / segmentRows) : 0;
    const startupCost = 100;
    // Fetching dominates: one unit per 8 kB of COPY text, plus a little per row evaluated.
    const totalCost = startupCost + bytes / 8192 + chunks.reduce((n, c) => n + c.rows, 0) * 0.01;
    return { startupCost, totalCost, rows, width };
  }

  async relationSize(table: AuthorizedTable, relation: RemoteRelationName): Promise<RelationSize> {
    const shape = await this.catalog.segmentOf(table.tableOid, relation);
    return { bytes: shape.rawBytes, rows: shape.rows };
  }

  /** Validates, resolves the relations, builds the SQL and picks the chunks. Runs nothing of the statement's. */
  private async prepare(
    table: AuthorizedTable,
    query: RemoteSelect,
    settings: SessionSettings,
    describe: boolean,
  ): Promise<Prepared> {
    const tree = structuredClone(query.tree);
    const paramTypes = await this.typeParameters(tree, query.paramTypes);
    const v = validateSelect(tree, query.params.length);
    await this.checks.checkFunctions(v.functions);
    const shapes: SegmentShape[] = [];
    for (const rv of v.relations)
      shapes.push(
        await this.catalog.segmentOf(table.tableOid, {
          schema: rv.schemaname as string,
          name: rv.relname as string,
        }),
      );
    const inputs = relationInputs(v, shapes, query.params.length);
    const evaluation = await evaluationSql(v, inputs, {
      sql: query.sql,
      tree: query.tree,
      paramTypes,
    });
    const single = inputs.length === 1 ? inputs[0]! : undefined;
    const planner = single
      ? await SkipPlanner.plan(v, single.shape, single.alias, query.params)
      : undefined;
    let skippingFailed = false;
    let wholeChunks = new Set<number>();
    let columns: ResultColumn[] = [];
    const candidates = await inSession(
      this.pool,
      settings,
      this.statementTimeoutMs,
      async (client) => {
        const decodedTypes = inputs.flatMap((input) =>
          input.named.map((col) => input.shape.columns[col]!.decodeAs),
        );
        await this.checks.checkTypes(client, v.typeNames, decodedTypes);
        if (describe) columns = await this.describe(client, evaluation, query, inputs);
        let chosen: Set<number> | undefined;
        // Last in the transaction, so no savepoint: a failure leaves nothing else to run in it.
        if (planner) {
          try {
            const found = await planner.candidates(client);
            chosen = found.may;
            wholeChunks = found.whole;
          } catch {
            // Statistics PostgreSQL cannot compare with the condition's constant: read every chunk.
            skippingFailed = true;
          }
        }
        return shapes.map((s) =>
          [...s.chunks]
            .sort((a, b) => a.seq - b.seq)
            .filter((c) => chosen === undefined || chosen.has(c.seq)),
        );
      },
    );
    return { v, shapes, inputs, evaluation, candidates, skippingFailed, wholeChunks, columns };
  }

  /**
   * Parameters the client typed in its Parse message (postgres_fdw leaves them 0 and casts in
   * the text) become `$n::type`: the value is read by the type's input function either way. The
   * cast is then checked like any other. Returns the type names by parameter number.
   */
  private async typeParameters(tree: unknown, paramTypes: number[]): Promise<Map<number, string>> {
    const typed = paramTypes.flatMap((oid, i) => (oid ? [[i + 1, oid] as const] : []));
    const typeNames = new Map<number, string>();
    if (typed.length === 0) return typeNames;
    const { rows } = await this.pool.query<{ name: string | null }>(
      "SELECT pg_catalog.format_type(t, NULL) AS name FROM pg_catalog.unnest($1::pg_catalog.oid[]) WITH ORDINALITY AS a(t, i) ORDER BY a.i",
      [typed.map(([, oid]) => oid)],
    );
    const casts = new Map<number, unknown>();
    for (let k = 0; k < typed.length; k++) {
      const name = rows[k]?.name;
      if (!name || name === "???")
        throw new ColdReadError(`unknown parameter type ${typed[k]![1]}`, "42704");
      const parsed = await parseSelect(`SELECT NULL::${name}`);
      const cast = nodeOf((parsed.SelectStmt!.targetList as unknown[])[0])![1].val;
      casts.set(typed[k]![0], nodeOf(cast)![1].typeName);
      typeNames.set(typed[k]![0], name);
    }
    wrapParams(tree, casts);
    return typeNames;
  }

  /** The result's columns: the evaluation run over no rows (which also checks it compiles). */
  private async describe(
    client: pg.ClientBase,
    evaluation: EvaluationSql,
    query: RemoteSelect,
    inputs: RelationInput[],
  ): Promise<ResultColumn[]> {
    const empty = inputs.flatMap((i) => i.arrays.map(() => [] as string[]));
    const result = await client.query({
      text: evaluation.sql,
      values: [...query.params, ...empty],
      rowMode: "array",
      types: RAW_TYPES,
    });
    let fields = result.fields.map((f) => ({ name: f.name, typeOid: f.dataTypeID }));
    if (evaluation.simpleColumns) {
      fields = fields.slice(0, -1);
      const shape = inputs[0]!.shape;
      const stored = evaluation.simpleColumns.flatMap((c, i) =>
        typeof c === "number" ? [[i, c] as const] : [],
      );
      if (stored.length > 0) {
        const { rows } = await client.query<{ oid: string }>(
          "SELECT pg_catalog.to_regtype(t)::pg_catalog.oid AS oid FROM pg_catalog.unnest($1::pg_catalog.text[]) WITH ORDINALITY AS a(t, i) ORDER BY a.i",
          [stored.map(([, c]) => shape.columns[c]!.type)],
        );
        stored.forEach(([i, c], k) => {
          fields[i] = { name: shape.columns[c]!.name, typeOid: Number(rows[k]!.oid ?? 0) };
        });
      }
    }
    return fields;
  }

  private async *fetchChunks(
    shape: SegmentShape,
    chunks: SegmentChunk[],
    signal: AbortSignal,
    stats: ScanStats,
  ): AsyncGenerator<[SegmentChunk, CopyRow[]]> {
    // One chunk ahead: at most two chunks in memory.
    const get = (c: SegmentChunk) =>
      this.chunks.fetch(shape, c.seq, signal).then((buf) => {
        stats.chunksFetched++;
        stats.bytesFetched += buf.length;
        return parseCopyText(buf, shape.columns.length);
      });
    let next = chunks.length > 0 ? get(chunks[0]!) : undefined;
    next?.catch(() => {});
    for (let i = 0; i < chunks.length; i++) {
      if (signal.aborted) throw new ColdReadError("the read was cancelled", "57014");
      const rows = await next!;
      next = i + 1 < chunks.length ? get(chunks[i + 1]!) : undefined;
      next?.catch(() => {});
      yield [chunks[i]!, rows];
    }
  }

  private async *stream(
    p: Prepared,
    query: RemoteSelect,
    settings: SessionSettings,
    signal: AbortSignal,
    stats: ScanStats,
  ): AsyncGenerator<Array<string | null>> {
    const input = p.inputs[0]!;
    const simple = p.v.simple!;
    const shape = input.shape;
    const targetIndex = simple.targets.map((t) =>
      t.column === undefined ? -1 : shape.columns.findIndex((c) => c.name === t.column),
    );
    const sample = p.v.sample;
    // SYSTEM samples whole chunks (PostgreSQL samples whole blocks), BERNOULLI single rows.
    const chunks =
      sample?.method === "system"
        ? p.candidates[0]!.filter(() => Math.random() * 100 < sample.percent)
        : p.candidates[0]!;
    const keep =
      sample?.method === "bernoulli" ? () => Math.random() * 100 < sample.percent : () => true;
    try {
      yield* this.streamChunks(p, query, settings, signal, stats, chunks, targetIndex, keep);
      stats.outcome = "ok";
    } catch (error) {
      stats.outcome = signal.aborted ? "cancelled" : "error";
      throw error;
    } finally {
      this.report(stats);
    }
  }

  private async *streamChunks(
    p: Prepared,
    query: RemoteSelect,
    settings: SessionSettings,
    signal: AbortSignal,
    stats: ScanStats,
    chunks: SegmentChunk[],
    targetIndex: number[],
    keep: () => boolean,
  ): AsyncGenerator<Array<string | null>> {
    const input = p.inputs[0]!;
    const shape = input.shape;
    const exact = storedTextIsExact(shape, targetIndex);
    const noWhere = p.v.select.whereClause === undefined;
    for await (const [chunk, rows] of this.fetchChunks(shape, chunks, signal, stats)) {
      if (exact && (noWhere || p.wholeChunks.has(chunk.seq))) {
        stats.chunksAsStored++;
        for (const row of rows) if (keep()) yield targetIndex.map((i) => (i < 0 ? null : row[i]!));
        continue;
      }
      for (const batch of batches(rows, this.batchRows, this.batchBytes)) {
        if (signal.aborted) throw new ColdReadError("the read was cancelled", "57014");
        const arrays = input.arrays.map((col) => batch.map((row) => row[col]!));
        const result = await this.evaluate(p, query, settings, arrays);
        const columns = p.evaluation.simpleColumns!;
        for (const out of result) {
          const ord = Number(out[out.length - 1]);
          if (keep())
            yield columns.map((c, i) => (typeof c === "number" ? batch[ord - 1]![c]! : out[i]!));
        }
      }
    }
  }

  /** PostgreSQL evaluates the statement over decoded rows: one read-only session, rolled back. */
  private async evaluate(
    p: Prepared,
    query: RemoteSelect,
    settings: SessionSettings,
    arrays: Array<Array<string | null>>,
  ): Promise<Array<Array<string | null>>> {
    const result = await inSession(this.pool, settings, this.statementTimeoutMs, (client) =>
      client.query<Array<string | null>>({
        text: p.evaluation.sql,
        values: [...query.params, ...arrays],
        rowMode: "array",
        types: RAW_TYPES,
      }),
    );
    return result.rows;
  }

  /** Once per scan, however it ended: to the observer (the bridge's scan metrics). */
  private report(stats: ScanStats): void {
    stats.seconds = (performance.now() - stats.seconds) / 1000;
    this.options.observer?.(stats);
  }

  private async *evaluateAll(
    p: Prepared,
    query: RemoteSelect,
    settings: SessionSettings,
    signal: AbortSignal,
    stats: ScanStats,
  ): AsyncGenerator<Array<string | null>> {
    let result: Array<Array<string | null>>;
    try {
      const arrays: Array<Array<string | null>> = [];
      for (let r = 0; r < p.inputs.length; r++) {
        const input = p.inputs[r]!;
        const columns = input.arrays.map(() => [] as Array<string | null>);
        for await (const [, rows] of this.fetchChunks(input.shape, p.candidates[r]!, signal, stats))
          for (const row of rows) input.arrays.forEach((col, k) => columns[k]!.push(row[col]!));
        arrays.push(...columns);
      }
      if (signal.aborted) throw new ColdReadError("the read was cancelled", "57014");
      result = await this.evaluate(p, query, settings, arrays);
      stats.outcome = "ok";
    } catch (error) {
      stats.outcome = signal.aborted ? "cancelled" : "error";
      throw error;
    } finally {
      this.report(stats);
    }
    yield* result;
  }
}

/** Replaces, in place, each `$n` with a typed parameter by `$n::type`. */
function wrapParams(value: unknown, casts: Map<number, unknown>): void {
  if (typeof value !== "object" || value === null) return;
  const entries: Array<[string | number, unknown]> = Array.isArray(value)
    ? value.map((v, i) => [i, v])
    : Object.entries(value);
  for (const [key, child] of entries) {
    const node = nodeOf(child);
    if (node?.[0] === "ParamRef" && casts.has(node[1].number as number)) {
      (value as Record<string | number, unknown>)[key] = {
        TypeCast: { arg: child, typeName: structuredClone(casts.get(node[1].number as number)) },
      };
    } else wrapParams(child, casts);
  }
}

/** Rows in runs of at most `maxRows` rows and (unless one row alone is bigger) `maxBytes` of text. */
function* batches(rows: CopyRow[], maxRows: number, maxBytes: number): Generator<CopyRow[]> {
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < rows.length; i++) {
    let size = 0;
    for (const f of rows[i]!) size += f === null ? 2 : f.length + 1;
    if (i > start && (i - start >= maxRows || bytes + size > maxBytes)) {
      yield rows.slice(start, i);
      start = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (start < rows.length) yield rows.slice(start);
}

/** Whether the stored COPY text of these columns can be returned as is (storedTextExact). */
export function storedTextIsExact(shape: SegmentShape, targets: number[]): boolean {
  return targets.every((i) => i < 0 || storedTextExact(shape.columns[i]!));
}

export type { Fields };
