// Generates SQL over the awkward-value table (test/fixtures/awkward-table.sql): the same query,
// from the same seed, for the offloaded table and for its never-offloaded copy. Pure: no database,
// the column values to draw constants from are passed in (see sampleQueries).
import { Prng, querySeed } from "./prng.ts";

/** What a column holds, which decides the predicates, orderings and aggregates it takes. */
export type ColumnKind =
  | "int"
  | "numeric"
  | "float"
  | "text"
  | "date"
  | "timestamptz"
  | "timestamp"
  | "bool"
  | "bytea"
  | "jsonb"
  | "json"
  | "intarray"
  | "textarray"
  | "enum"
  | "uuid"
  | "interval"
  | "inet"
  | "time"
  | "timetz"
  | "point"
  | "range"
  | "varbit";

/** Every column of the awkward table and its kind. */
export const AWKWARD_COLUMNS: Readonly<Record<string, ColumnKind>> = {
  id: "int",
  created_at: "timestamptz",
  day: "date",
  local_ts: "timestamp",
  label: "text",
  short: "text",
  fixed: "text",
  amount: "numeric",
  ratio: "float",
  small_real: "float",
  tiny: "int",
  flag: "bool",
  blob: "bytea",
  doc: "jsonb",
  raw_json: "json",
  ints: "intarray",
  texts: "textarray",
  feeling: "enum",
  count: "int",
  uid: "uuid",
  span: "interval",
  addr: "inet",
  at_time: "time",
  at_timetz: "timetz",
  pt: "point",
  rng: "range",
  bits: "varbit",
};

const COLUMNS = Object.keys(AWKWARD_COLUMNS);

/** Sample keys beyond the columns: array elements and jsonb keys. */
const ELEMENT_SAMPLES = {
  "ints[]": "SELECT DISTINCT e::text AS v FROM {{table}}, unnest(ints) e WHERE e IS NOT NULL",
  "texts[]": "SELECT DISTINCT e AS v FROM {{table}}, unnest(texts) e WHERE e IS NOT NULL",
  "doc{}":
    "SELECT DISTINCT k AS v FROM {{table}}, jsonb_object_keys(doc) k WHERE jsonb_typeof(doc) = 'object'",
} as const;

/** Per sample key, the query that lists its distinct non-NULL values as text, in a fixed order. */
export function sampleQueries(table: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const column of COLUMNS) {
    out[column] =
      `SELECT DISTINCT ${quoteIdent(column)}::text AS v FROM ${table} WHERE ${quoteIdent(column)} IS NOT NULL`;
  }
  for (const [key, sql] of Object.entries(ELEMENT_SAMPLES))
    out[key] = sql.replace("{{table}}", table);
  for (const key of Object.keys(out))
    out[key] = `SELECT v FROM (${out[key]}) s ORDER BY v COLLATE "C"`;
  return out;
}

/** At most n values spread evenly over a sorted list: the constants queries draw from. */
export function spread(values: readonly string[], n: number): string[] {
  if (values.length <= n) return [...values];
  return Array.from({ length: n }, (_, i) => values[Math.floor((i * values.length) / n)]!);
}

export interface GeneratorContext {
  /** Per sample key (column name, `ints[]`, `texts[]`, `doc{}`), values as text. */
  samples: Readonly<Record<string, readonly string[]>>;
  /** Collations to compare text under besides the default, e.g. "C", "en-US-x-icu". */
  collations: readonly string[];
}

export type QueryKind = "filter" | "ordered" | "aggregate" | "join" | "lateral";

export interface GeneratedQuery {
  kind: QueryKind;
  /** SQL with `{{table}}` where the table's name goes. */
  template: string;
  /** SET LOCAL statements the query runs under (e.g. to force a parameterized nested loop). */
  settings: string[];
  /** True when the query's ORDER BY is a total order; otherwise rows are compared sorted. */
  ordered: boolean;
}

/** The query's SQL for one table. */
export function forTable(query: GeneratedQuery, table: string): string {
  return query.template.replaceAll("{{table}}", table);
}

/** Query `index` of the run seeded `seed`. */
export function generateQuery(seed: number, index: number, ctx: GeneratorContext): GeneratedQuery {
  return new QueryGenerator(new Prng(querySeed(seed, index)), ctx).query();
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function literal(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** Constants worth trying on every kind besides the column's own values. */
const EDGE_VALUES: Readonly<Record<ColumnKind, readonly string[]>> = {
  int: ["0", "-1", "1", "3000"],
  numeric: ["NaN", "Infinity", "-Infinity", "0", "-0.000000000000000000001"],
  float: ["NaN", "Infinity", "-Infinity", "-0", "0", "1e-308"],
  text: ["", "\\N", "żółć", "unicode: żółć 日本語 🎉 ", "plain", "ab", "Z", "a", "\\."],
  date: ["infinity", "-infinity", "epoch", "2000-02-29"],
  timestamptz: ["infinity", "-infinity", "epoch", "2000-01-01 00:00:00+00"],
  timestamp: ["infinity", "-infinity", "epoch", "1999-12-31 23:59:59.999999"],
  bool: ["true", "false"],
  bytea: ["\\x", "\\x00ff0a095c", "\\x00"],
  jsonb: ["{}", "null", '"just a string with \\\\ backslash"', '{"i": 7}'],
  json: ["{}"],
  intarray: ["{}", "{1,NULL,3}", "{NULL}", "{1}"],
  textarray: ["{}", '{""}', "{NULL}", '{"a,b"}'],
  enum: ["sad", "ok", "happy", 'it\'s "complicated"'],
  uuid: ["00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"],
  interval: ["0", "-1 day", "1 year 2 months", "30 days", "-1 day +02:03:04.5"],
  inet: ["::1", "192.168.0.1", "192.168.0.0/16", "::/0"],
  time: ["00:00", "24:00", "12:00", "23:59:59.999999"],
  timetz: ["12:00+05:30", "06:30+00", "00:00+00"],
  point: ["(0,0)", "(5,-1.6666666666666667)"],
  range: ["empty", "[1,10)", "(,)", "[5,)", "[100,110)"],
  varbit: ["", "0000000000000001", "1111111111111111"],
};

/** Kinds with a btree ordering (ORDER BY, <, BETWEEN, min/max where PostgreSQL has them). */
const ORDERED_KINDS = new Set<ColumnKind>([
  "int",
  "numeric",
  "float",
  "text",
  "date",
  "timestamptz",
  "timestamp",
  "bool",
  "bytea",
  "jsonb",
  "intarray",
  "textarray",
  "enum",
  "uuid",
  "interval",
  "inet",
  "time",
  "timetz",
  "range",
  "varbit",
]);

/** Kinds PostgreSQL has min() and max() for. */
const MIN_MAX_KINDS = new Set<ColumnKind>([
  "int",
  "numeric",
  "float",
  "text",
  "date",
  "timestamptz",
  "timestamp",
  "intarray",
  "textarray",
  "enum",
  "interval",
  "inet",
  "time",
  "timetz",
]);

const ODD_SETTINGS = [
  "SET LOCAL TimeZone = 'Asia/Kathmandu'",
  "SET LOCAL TimeZone = 'America/St_Johns'",
  "SET LOCAL DateStyle = 'SQL, DMY'",
  "SET LOCAL DateStyle = 'German'",
  "SET LOCAL IntervalStyle = 'iso_8601'",
  "SET LOCAL IntervalStyle = 'sql_standard'",
  "SET LOCAL extra_float_digits = 0",
  "SET LOCAL bytea_output = 'escape'",
  "SET LOCAL enable_seqscan = off",
  "SET LOCAL constraint_exclusion = off",
];

const COMPARISONS = ["=", "<>", "<", "<=", ">", ">="] as const;

class QueryGenerator {
  constructor(
    private readonly rng: Prng,
    private readonly ctx: GeneratorContext,
  ) {}

  query(): GeneratedQuery {
    const kind = this.rng.pick<QueryKind>([
      "filter",
      "filter",
      "ordered",
      "ordered",
      "aggregate",
      "aggregate",
      "join",
      "lateral",
    ]);
    const query = (() => {
      switch (kind) {
        case "filter":
          return this.filterQuery();
        case "ordered":
          return this.orderedQuery();
        case "aggregate":
          return this.aggregateQuery();
        case "join":
          return this.joinQuery();
        case "lateral":
          return this.lateralQuery();
      }
    })();
    // Now and then in a session whose settings change how values read and print: the rows must
    // not depend on the session the cold data is read in.
    if (this.rng.chance(0.15))
      query.settings.push(...this.rng.some(ODD_SETTINGS, this.rng.int(1, 3)));
    return query;
  }

  /** SELECT some columns WHERE a random condition; compared as sorted rows. */
  private filterQuery(): GeneratedQuery {
    const template = `SELECT ${this.selectList("t")} FROM {{table}} t WHERE ${this.condition("t", 3)}`;
    return { kind: "filter", template, settings: [], ordered: false };
  }

  /** ORDER BY a total order (ending with id), with LIMIT and OFFSET. */
  private orderedQuery(): GeneratedQuery {
    const where = this.rng.chance(0.8) ? ` WHERE ${this.condition("t", 2)}` : "";
    const limit = this.rng.chance(0.85) ? ` LIMIT ${this.rng.int(1, 60)}` : "";
    const offset = this.rng.chance(0.4) ? ` OFFSET ${this.rng.int(0, 200)}` : "";
    const template =
      `SELECT ${this.selectList("t")} FROM {{table}} t${where}` +
      ` ORDER BY ${this.orderBy("t")}${limit}${offset}`;
    return { kind: "ordered", template, settings: [], ordered: true };
  }

  /** Aggregates, grouped or not, with FILTER and HAVING now and then. */
  private aggregateQuery(): GeneratedQuery {
    const groupings = [
      "t.feeling",
      "t.flag",
      "t.fixed",
      "t.tiny % 5",
      "date_trunc('month', t.day)",
      "t.addr",
      "t.rng",
      't.short COLLATE "C"',
      "jsonb_typeof(t.doc)",
      "cardinality(t.ints)",
      "t.amount",
      "t.ratio",
    ];
    const groups = this.rng.chance(0.75) ? this.rng.some(groupings, this.rng.int(1, 2)) : [];
    const aggregates = Array.from({ length: this.rng.int(1, 4) }, () => this.aggregate("t"));
    const select = [
      ...groups.map((g, i) => `${g} AS g${i}`),
      ...aggregates.map((a, i) => `${a} AS a${i}`),
    ];
    const where = this.rng.chance(0.6) ? ` WHERE ${this.condition("t", 2)}` : "";
    const groupBy = groups.length > 0 ? ` GROUP BY ${groups.join(", ")}` : "";
    const having =
      groups.length > 0 && this.rng.chance(0.3) ? ` HAVING count(*) > ${this.rng.int(0, 100)}` : "";
    const template = `SELECT ${select.join(", ")} FROM {{table}} t${where}${groupBy}${having}`;
    return { kind: "aggregate", template, settings: [], ordered: false };
  }

  /**
   * A join of a few keys (a VALUES list) to the table with hash and merge joins off, so that the
   * table is the inner side of a nested loop, scanned (and parameterized) once per key.
   */
  private joinQuery(): GeneratedQuery {
    const [keyColumn, on] = this.rng.pick<[string, (k: string) => string]>([
      ["id", (k) => `t.id = ${k}`],
      ["id", (k) => `t.id BETWEEN ${k} AND ${k} + 3`],
      ["label", (k) => `t.label = ${k}`],
      ["day", (k) => `t.day = ${k}`],
      ["feeling", (k) => `t.feeling = ${k}`],
      ["amount", (k) => `t.amount = ${k}`],
      ["created_at", (k) => `t.created_at = ${k}`],
      ["created_at", (k) => `t.created_at BETWEEN ${k} AND ${k} + interval '3 hours'`],
      ["ints[]", (k) => `${k} = ANY (t.ints)`],
    ]);
    const cast: Record<string, [string, ColumnKind]> = {
      id: ["bigint", "int"],
      label: ["text", "text"],
      day: ["date", "date"],
      feeling: ["text", "enum"],
      amount: ["numeric", "numeric"],
      created_at: ["timestamptz", "timestamptz"],
      "ints[]": ["int", "int"],
    };
    const [type, kind] = cast[keyColumn]!;
    const keys = Array.from({ length: this.rng.int(1, 4) }, () =>
      this.rng.chance(0.1) ? "NULL" : literal(this.sample(keyColumn, kind)),
    );
    const values = keys.map((k) => `(${k}::${type})`).join(", ");
    const feelingCast = keyColumn === "feeling" ? "::text" : "";
    const condition = on(`k.v`).replace("t.feeling =", `t.feeling${feelingCast} =`);
    const where = this.rng.chance(0.5) ? ` AND ${this.condition("t", 2)}` : "";
    const outer = this.rng.chance(0.3) ? "LEFT JOIN" : "JOIN";
    const template =
      `SELECT k.v AS key, ${this.selectList("t")} FROM (VALUES ${values}) k(v)` +
      ` ${outer} {{table}} t ON ${condition}${where}`;
    const settings = ["SET LOCAL enable_hashjoin = off", "SET LOCAL enable_mergejoin = off"];
    return { kind: "join", template, settings, ordered: false };
  }

  /** A LATERAL subquery with ORDER BY and LIMIT, run once per outer key with the key as a parameter. */
  private lateralQuery(): GeneratedQuery {
    const keys = Array.from({ length: this.rng.int(1, 3) }, () =>
      literal(this.sample("id", "int")),
    );
    const values = keys.map((k) => `(${k}::bigint)`).join(", ");
    const bound = this.rng.pick([
      "t.id >= k.v",
      "t.id <= k.v",
      "t.id BETWEEN k.v - 50 AND k.v + 50",
    ]);
    const where = this.rng.chance(0.6) ? ` AND ${this.condition("t", 2)}` : "";
    const template =
      `SELECT k.v AS key, x.* FROM (VALUES ${values}) k(v) CROSS JOIN LATERAL` +
      ` (SELECT ${this.selectList("t")} FROM {{table}} t WHERE ${bound}${where}` +
      ` ORDER BY ${this.orderBy("t")} LIMIT ${this.rng.int(1, 8)}) x`;
    return { kind: "lateral", template, settings: [], ordered: false };
  }

  private selectList(alias: string): string {
    if (this.rng.chance(0.25)) return `${alias}.*`;
    const columns = this.rng.some(COLUMNS, this.rng.int(1, 6));
    if (!columns.includes("id")) columns.unshift("id");
    const extra = this.rng.chance(0.3)
      ? [
          this.rng.pick([
            `${alias}.doc -> 'a' AS doc_a`,
            `${alias}.texts[1] AS first_text`,
            `${alias}.label COLLATE "C" || '|' AS label_bar`,
            `upper(${alias}.rng) AS rng_upper`,
            `${alias}.amount + 1 AS amount_plus`,
            `${alias}.raw_json ->> 'dup' AS dup`,
            `length(${alias}.blob) AS blob_length`,
          ]),
        ]
      : [];
    return [...columns.map((c) => `${alias}.${quoteIdent(c)}`), ...extra].join(", ");
  }

  /** One to three ordered columns, each ASC or DESC and NULLS FIRST or LAST, then id: total. */
  private orderBy(alias: string): string {
    const ordered = COLUMNS.filter((c) => ORDERED_KINDS.has(AWKWARD_COLUMNS[c]!) && c !== "id");
    const keys = this.rng.some(ordered, this.rng.int(0, 3)).map((c) => {
      let key = `${alias}.${quoteIdent(c)}`;
      if (AWKWARD_COLUMNS[c] === "text" && this.rng.chance(0.5))
        key += ` COLLATE ${this.collation()}`;
      if (this.rng.chance(0.5)) key += " DESC";
      if (this.rng.chance(0.4)) key += this.rng.pick([" NULLS FIRST", " NULLS LAST"]);
      return key;
    });
    keys.push(`${alias}.id${this.rng.chance(0.3) ? " DESC" : ""}`);
    return keys.join(", ");
  }

  private aggregate(alias: string): string {
    const minMax = COLUMNS.filter((c) => MIN_MAX_KINDS.has(AWKWARD_COLUMNS[c]!));
    const filter = this.rng.chance(0.2) ? ` FILTER (WHERE ${this.condition(alias, 1)})` : "";
    const a = (c: string) => `${alias}.${quoteIdent(c)}`;
    const made = this.rng.pick<() => string>([
      () => "count(*)",
      () => `count(${a(this.rng.pick(COLUMNS))})`,
      () => `count(DISTINCT ${a(this.rng.pick(["feeling", "fixed", "addr", "tiny", "doc"]))})`,
      // Exact sums only: a float sum depends on the order rows are added in.
      () => `sum(${a(this.rng.pick(["amount", "tiny", "id", "count", "span"]))})`,
      () => `avg(${a(this.rng.pick(["amount", "tiny", "count"]))})`,
      () => `${this.rng.pick(["min", "max"])}(${a(this.rng.pick(minMax))})`,
      () => `min(${a(this.rng.pick(["label", "short"]))} COLLATE ${this.collation()})`,
      () => `string_agg(${a("label")}, '|' ORDER BY ${alias}.id)`,
      () =>
        `string_agg(${a("short")}, ',' ORDER BY ${a("short")} COLLATE ${this.collation()}, ${alias}.id)`,
      () => `bool_and(${a("flag")})`,
      () => `bool_or(${a("flag")})`,
      () =>
        `array_agg(${a(this.rng.pick(["tiny", "feeling", "rng", "day"]))} ORDER BY ${alias}.id)`,
      () => `jsonb_agg(${a("doc")} ORDER BY ${alias}.id)`,
      () => `max(${a("ratio")}) - min(${a("ratio")})`,
    ])();
    return made + filter;
  }

  /** A tree of AND, OR and NOT over column predicates. */
  private condition(alias: string, depth: number): string {
    if (depth <= 0 || this.rng.chance(0.35)) return this.predicate(alias);
    const r = this.rng.next();
    if (r < 0.1) return `NOT (${this.condition(alias, depth - 1)})`;
    const op = r < 0.55 ? "AND" : "OR";
    const parts = Array.from({ length: this.rng.int(2, 3) }, () =>
      this.condition(alias, depth - 1),
    );
    return `(${parts.join(` ${op} `)})`;
  }

  /** A constant for the column: one of its own values, now and then an edge value of its kind. */
  private sample(key: string, kind: ColumnKind): string {
    const own = this.ctx.samples[key] ?? [];
    if (own.length === 0 || this.rng.chance(0.15)) return this.rng.pick(EDGE_VALUES[kind]);
    return this.rng.pick(own);
  }

  private collation(): string {
    return quoteIdent(
      this.rng.pick(["C", "default", ...this.ctx.collations.filter((c) => c !== "C")]),
    );
  }

  /** A predicate on one column, picked at random. */
  predicate(alias: string): string {
    const column = this.rng.pick(COLUMNS);
    return this.predicateOn(alias, column);
  }

  /** A predicate on the given column, by its kind. */
  predicateOn(alias: string, column: string): string {
    const kind = AWKWARD_COLUMNS[column]!;
    const c = `${alias}.${quoteIdent(column)}`;
    const v = () => literal(this.sample(column, kind));
    const common = [() => `${c} IS NULL`, () => `${c} IS NOT NULL`];
    const comparable =
      ORDERED_KINDS.has(kind) && kind !== "text"
        ? [
            () => `${c} ${this.rng.pick(COMPARISONS)} ${v()}`,
            () => `${c} ${this.rng.pick(COMPARISONS)} ${v()}`,
            () =>
              `${c} IS ${this.rng.chance(0.5) ? "" : "NOT "}DISTINCT FROM ${this.rng.chance(0.1) ? "NULL" : v()}`,
            () =>
              `${c} ${this.rng.chance(0.2) ? "NOT " : ""}BETWEEN ${this.rng.chance(0.2) ? "SYMMETRIC " : ""}${v()} AND ${v()}`,
            () => `${c} ${this.rng.chance(0.2) ? "NOT " : ""}IN (${this.inList(() => v())})`,
          ]
        : [];
    const own = this.kindPredicates(kind, c, column, v);
    return this.rng.pick([...common, ...comparable, ...own, ...own])();
  }

  private inList(value: () => string): string {
    const items = Array.from({ length: this.rng.int(1, 5) }, value);
    if (this.rng.chance(0.1)) items.push("NULL");
    return items.join(", ");
  }

  private kindPredicates(
    kind: ColumnKind,
    c: string,
    column: string,
    v: () => string,
  ): (() => string)[] {
    const rng = this.rng;
    const n = (min: number, max: number) => String(rng.int(min, max));
    switch (kind) {
      case "int":
        return [
          () => `${c} % ${n(2, 13)} = ${n(0, 1)}`,
          () => `${c} = ANY (${literal(`{${this.inList(() => this.sample(column, kind))}}`)})`,
          () => `${c} + ${n(-5, 5)} > ${v()}`,
        ];
      case "numeric":
        return [
          () => `${c} = ANY (ARRAY[${this.inList(v)}]::numeric[])`,
          () => `${c} ${rng.pick(COMPARISONS)} ${rng.pick(["'NaN'", "'Infinity'", "'-Infinity'"])}`,
          () => `round(${c}, ${n(0, 3)}) ${rng.pick(COMPARISONS)} ${v()}`,
          () => `${c} * 2 > ${v()}`,
        ];
      case "float":
        return [
          () =>
            `${c} ${rng.pick(COMPARISONS)} ${rng.pick(["'NaN'", "'Infinity'", "'-Infinity'", "'-0'"])}`,
          () => `${c} = ANY (${literal(`{${this.inList(() => this.sample(column, kind))}}`)})`,
          () => `abs(${c}) < ${v()}`,
        ];
      case "text": {
        const collate = () => (rng.chance(0.6) ? ` COLLATE ${this.collation()}` : "");
        const pattern = () => literal(this.likePattern(this.sample(column, kind)));
        return [
          () => `${c}${collate()} ${rng.pick(COMPARISONS)} ${v()}`,
          () => `${c} ${rng.pick(COMPARISONS)} ${v()}${collate()}`,
          () => `${c}${collate()} ${rng.chance(0.2) ? "NOT " : ""}BETWEEN ${v()} AND ${v()}`,
          () => `${c} ${rng.chance(0.2) ? "NOT " : ""}IN (${this.inList(v)})`,
          () => `${c} IS ${rng.chance(0.5) ? "" : "NOT "}DISTINCT FROM ${v()}`,
          () => `${c} ${rng.pick(["LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE"])} ${pattern()}`,
          () => `${c} LIKE ${pattern()} COLLATE "C"`,
          () => `${c} ~ ${literal(rng.pick(["^un", "\\d+$", "^$", "\\t", "[[:space:]]", "ż"]))}`,
          () => `length(${c}) ${rng.pick(COMPARISONS)} ${n(0, 30)}`,
          () => `lower(${c}) = lower(${v()})`,
          () => `${c} = ANY (ARRAY[${this.inList(v)}])`,
          () => `coalesce(${c}, '') || 'x' ${rng.pick(COMPARISONS)} ${v()}${collate()}`,
        ];
      }
      case "date":
      case "timestamptz":
      case "timestamp":
        return [
          () => `isfinite(${c})`,
          () => `${c} ${rng.pick(COMPARISONS)} ${rng.pick(["'infinity'", "'-infinity'"])}`,
          () => `${c} + interval '${n(1, 90)} days' > ${v()}`,
          () => `extract(${rng.pick(["year", "month", "dow"])} from ${c}) = ${n(0, 12)}`,
          () => `date_trunc('day', ${c}) ${rng.pick(COMPARISONS)} ${v()}`,
          // Not a constant at plan time: partitions are pruned when the scan starts.
          () =>
            `${c} ${rng.pick(COMPARISONS)} ${kind === "date" ? "current_date" : "now()"} - interval '${n(0, 130)} days'`,
        ];
      case "bool":
        return [
          () => c,
          () => `NOT ${c}`,
          () =>
            `${c} IS ${rng.pick(["TRUE", "NOT TRUE", "FALSE", "NOT FALSE", "UNKNOWN", "NOT UNKNOWN"])}`,
        ];
      case "bytea":
        return [
          () => `length(${c}) ${rng.pick(COMPARISONS)} ${n(0, 16)}`,
          () => `${c} LIKE ${literal(rng.pick(["\\000%", "%\\012%", "", "%"]))}::bytea`,
          () => `position('\\x0a'::bytea in ${c}) > 0`,
        ];
      case "jsonb": {
        const key = () => literal(this.sample("doc{}", "text"));
        return [
          () =>
            `${c} ->> ${key()} ${rng.pick(COMPARISONS)} ${literal(rng.pick(["5", "ünï", "a\nb", "1"]))}`,
          () => `${c} ? ${key()}`,
          () => `${c} ?| ARRAY[${key()}, ${key()}]`,
          () => `${c} ?& ARRAY[${key()}, ${key()}]`,
          () => `${c} @> ${v()}`,
          () => `${c} <@ ${v()}`,
          () => `jsonb_typeof(${c}) = ${literal(rng.pick(["object", "string", "array", "null"]))}`,
          () => `${c} #>> '{a,2,b}' IS NULL`,
          () => `${c} -> 'a' @> '[1]'`,
          () => `(${c} ->> 'i')::int ${rng.pick(COMPARISONS)} ${n(0, 3000)}`,
          () => `${c} @? '$.a[*] ? (@ == 2)'`,
          () => `${c} ->> 't' LIKE '%\t%'`,
        ];
      }
      case "json":
        return [
          () => `${c} ->> 'dup' = ${literal(rng.pick(["1", "2"]))}`,
          () => `${c}::text = ${v()}`,
          () => `json_typeof(${c}) = 'object'`,
          () => `(${c} ->> 'spaced')::boolean`,
        ];
      case "intarray": {
        const e = () => this.sample("ints[]", "int");
        return [
          () => `${literal(e())} = ANY (${c})`,
          () => `${literal(e())} <> ALL (${c})`,
          () => `${c} @> ${literal(`{${e()}}`)}`,
          () => `${c} && ${literal(`{${e()},${e()}}`)}`,
          () => `${c} <@ ${v()}`,
          () => `cardinality(${c}) = ${n(0, 3)}`,
          () => `${c}[${n(1, 3)}] ${rng.pick(COMPARISONS)} ${literal(e())}`,
          () => `${c}[2] IS NULL`,
          () => `array_position(${c}, NULL) IS NOT NULL`,
        ];
      }
      case "textarray": {
        const e = () => this.sample("texts[]", "text");
        return [
          () => `${literal(e())} = ANY (${c})`,
          () => `${c} @> ARRAY[${literal(e())}]`,
          () => `${c} && ARRAY[${literal(e())}, ${literal(e())}]`,
          () => `${c}[${n(1, 6)}] ${rng.pick(["=", "<", ">"])} ${literal(e())}`,
          () => `array_length(${c}, 1) IS NULL`,
          () => `${c}[1] LIKE ${literal(this.likePattern(e()))}`,
          () => `array_to_string(${c}, '|', '*') ${rng.pick(COMPARISONS)} ${literal(e())}`,
        ];
      }
      case "enum":
        return [
          () => `${c}::text LIKE ${literal(this.likePattern(this.sample(column, kind)))}`,
          () =>
            `${c} = ANY (${literal(`{${this.inList(() => `"${this.sample(column, kind).replaceAll('"', '\\"')}"`)}}`)})`,
        ];
      case "uuid":
        return [
          () => `${c}::text LIKE ${literal(`${rng.pick("0123456789abcdef".split(""))}%`)}`,
          () => `${c} = ANY (${literal(`{${this.inList(() => this.sample(column, kind))}}`)})`,
        ];
      case "interval":
        return [
          () =>
            `${c} ${rng.pick(COMPARISONS)} ${literal(rng.pick(["1 day", "-1 day", "1 mon", "365 days", "2 hours"]))}`,
          () => `justify_interval(${c}) = ${v()}`,
          () => `extract(epoch from ${c}) > ${n(-100000, 100000)}`,
        ];
      case "inet":
        return [
          () =>
            `${c} <<= ${literal(rng.pick(["192.168.0.0/16", "::/0", "10.0.0.0/8", "192.168.0.1/24"]))}`,
          () => `family(${c}) = ${rng.pick(["4", "6"])}`,
          () => `masklen(${c}) ${rng.pick(COMPARISONS)} ${n(0, 128)}`,
          () => `host(${c}) = ${literal(rng.pick(["::1", "192.168.0.1"]))}`,
        ];
      case "time":
      case "timetz":
        return [
          () => `${c} ${rng.pick(COMPARISONS)} ${literal(rng.pick(EDGE_VALUES[kind]))}`,
          () => `extract(hour from ${c}) ${rng.pick(COMPARISONS)} ${n(0, 24)}`,
        ];
      case "point":
        return [
          () => `${c}[0] ${rng.pick(COMPARISONS)} ${n(0, 3000)}`,
          () => `${c}[1] ${rng.pick(COMPARISONS)} ${n(-1000, 0)}`,
          () => `${c} <@ box '((0,0),(${n(1, 3000)},${n(-1000, -1)}))'`,
          () => `${c} ~= point ${v()}`,
        ];
      case "range":
        return [
          () => `${c} @> ${n(-5, 3010)}`,
          () => `${c} && ${v()}`,
          () => `${c} <@ ${v()}`,
          () => `isempty(${c})`,
          () => `lower(${c}) ${rng.pick(COMPARISONS)} ${n(0, 3000)}`,
          () => `${c} -|- ${v()}`,
          () => `${c} << ${v()}`,
          () => `upper_inf(${c})`,
        ];
      case "varbit":
        return [
          () => `(${c} & B'0000000000000001') = B'0000000000000001'`,
          () => `get_bit(${c}, ${n(0, 15)}) = 1`,
          () => `length(${c}) = 16`,
          () => `${c}::text LIKE ${literal(`%${rng.pick(["000", "111", "01"])}%`)}`,
        ];
    }
  }

  /**
   * A LIKE pattern drawn from a value: a prefix, a middle or a suffix, with % and _. Never ending
   * in a lone backslash (the escape character): PostgreSQL rejects such a pattern whenever it
   * evaluates it, which includes estimating the condition's selectivity on the column's statistics
   * at plan time. Whether it errors then depends on the statistics, not on the rows: the offloaded
   * table's differ from the copy's, and so would the answer (error or rows).
   */
  private likePattern(value: string): string {
    const pattern = this.likeShape(value);
    return /(^|[^\\])(\\\\)*\\$/.test(pattern) ? `${pattern}\\` : pattern;
  }

  private likeShape(value: string): string {
    const chars = [...value];
    const a = this.rng.int(0, chars.length);
    const b = this.rng.int(a, Math.min(chars.length, a + 6));
    const piece = chars.slice(a, b).join("");
    const shape = this.rng.int(0, 4);
    if (shape === 0) return `${piece}%`;
    if (shape === 1) return `%${piece}%`;
    if (shape === 2) return `%${piece}`;
    if (shape === 3) return piece.length > 0 ? `_${piece.slice(1)}%` : "_%";
    return value;
  }
}
