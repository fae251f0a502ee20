import { describe, expect, it } from "vitest";
import { difference } from "./compare.ts";
import { Prng, querySeed } from "./prng.ts";
import {
  AWKWARD_COLUMNS,
  forTable,
  generateQuery,
  sampleQueries,
  spread,
  type GeneratorContext,
} from "./query-generator.ts";

const CTX: GeneratorContext = {
  samples: {
    id: ["1", "1500", "3000"],
    label: ["", "tab\there", "it's"],
    feeling: ['it\'s "complicated"', "ok"],
    "ints[]": ["1", "3"],
    "texts[]": ["a,b", 'c"d'],
    "doc{}": ["a", "i"],
  },
  collations: ["en-US-x-icu"],
};

describe("the differential query generator", () => {
  it("makes the same queries from the same seed, and others from another", () => {
    const run = (seed: number) =>
      Array.from({ length: 50 }, (_, n) => generateQuery(seed, n, CTX).template);
    expect(run(7)).toEqual(run(7));
    expect(run(8)).not.toEqual(run(7));
    // Query n does not depend on the queries before it: DIFF_ONLY reruns it alone.
    expect(generateQuery(7, 42, CTX)).toEqual(generateQuery(7, 42, CTX));
  });

  it("uses every column of the awkward table in a condition, and makes every kind of query", () => {
    const queries = Array.from({ length: 3000 }, (_, n) => generateQuery(1, n, CTX));
    const wheres = queries.map((q) =>
      q.template
        .split(/ WHERE | ON | FILTER /)
        .slice(1)
        .join(" "),
    );
    for (const column of Object.keys(AWKWARD_COLUMNS)) {
      expect(
        wheres.some((w) => w.includes(`t."${column}"`)),
        column,
      ).toBe(true);
    }
    const kinds = new Set(queries.map((q) => q.kind));
    expect([...kinds].sort()).toEqual(["aggregate", "filter", "join", "lateral", "ordered"]);
    for (const construct of [
      "LIKE",
      "ILIKE",
      'COLLATE "C"',
      'COLLATE "en-US-x-icu"',
      "IS NULL",
      "IS DISTINCT FROM",
      "BETWEEN",
      " IN (",
      "= ANY (",
      "@>",
      "&&",
      "->>",
      " ? ",
      "'NaN'",
      "'infinity'",
      "NOT (",
      " OR ",
      "LIMIT",
      "OFFSET",
      "string_agg",
      "bool_and",
      "GROUP BY",
    ]) {
      expect(
        queries.some((q) => q.template.includes(construct)),
        construct,
      ).toBe(true);
    }
  });

  it("orders by a total order (ending with id) whenever rows are compared in order or limited", () => {
    for (let n = 0; n < 2000; n++) {
      const q = generateQuery(3, n, CTX);
      if (q.ordered)
        expect(q.template).toMatch(/ORDER BY .*t\.id( DESC)?( LIMIT \d+)?( OFFSET \d+)?$/);
      if (/LIMIT/.test(q.template)) expect(q.template).toMatch(/ORDER BY [^)]*t\.id( DESC)? LIMIT/);
      if (q.kind === "join") expect(q.settings).toContain("SET LOCAL enable_hashjoin = off");
    }
  });

  it("puts the table's name wherever the template says", () => {
    const q = generateQuery(1, 0, CTX);
    expect(forTable(q, "x_table")).not.toContain("{{table}}");
    expect(forTable(q, "x_table")).toContain("x_table");
  });

  it("samples every column and spreads the constants over the values", () => {
    expect(Object.keys(sampleQueries("t"))).toEqual(
      expect.arrayContaining(Object.keys(AWKWARD_COLUMNS)),
    );
    expect(spread(["a", "b", "c", "d"], 2)).toEqual(["a", "c"]);
    expect(spread(["a"], 2)).toEqual(["a"]);
  });

  it("has a seeded generator that stays within its bounds", () => {
    const a = new Prng(querySeed(5, 0));
    for (let i = 0; i < 1000; i++) {
      const x = a.int(-2, 3);
      expect(x).toBeGreaterThanOrEqual(-2);
      expect(x).toBeLessThanOrEqual(3);
    }
    expect(querySeed(5, 0)).not.toBe(querySeed(5, 1));
  });
});

describe("the differential comparison", () => {
  it("accepts the same rows or the same error, and names the first difference otherwise", () => {
    expect(difference({ rows: ["(1)", "(2)"] }, { rows: ["(1)", "(2)"] })).toBeUndefined();
    const err = (code: string) => ({ error: { code, message: "m" } });
    expect(difference(err("22012"), err("22012"))).toBeUndefined();
    expect(difference(err("22012"), err("42883"))).toMatch(/errors differ/);
    expect(difference(err("22012"), { rows: [] })).toMatch(/offloaded: error 22012/);
    expect(difference({ rows: ["(1)", "(3)"] }, { rows: ["(1)", "(2)"] })).toMatch(
      /first difference at row 2:\n {2}offloaded:\n {4}"\(3\)"\n {2}never offloaded:\n {4}"\(2\)"/,
    );
    expect(difference({ rows: ["(1)"] }, { rows: ["(1)", "(2)"] })).toMatch(/1 rows offloaded, 2/);
  });
});
