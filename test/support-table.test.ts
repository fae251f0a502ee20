import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { EMBEDDED_POSTGRES } from "../sandbox/postgres-versions.ts";

// The README's support table states what CI runs: it is checked against the files that decide
// it (.ci/run, package.json's engines, the PostgreSQL matrix, the Docker images), so a change to
// one of them that leaves the table behind fails here.
const text = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), "utf8");

/** The rows under "### Supported versions": first cell -> [versions, how it is checked]. */
function supportTable(): Map<string, [string, string]> {
  const section =
    text("README.md")
      .split(/^### Supported versions$/m)[1]
      ?.split(/^#/m)[0] ?? "";
  const rows = section.split("\n").filter((line) => /^\| \S/.test(line));
  return new Map(
    rows.map((row) => {
      const [name, versions, how] = row
        .split("|")
        .slice(1, 4)
        .map((cell) => cell.trim());
      return [name!, [versions!, how!]];
    }),
  );
}

/** A bash array or word list assigned in .ci/run, e.g. NODE_VERSIONS=(22.15.0 26.10.0). */
function ciList(pattern: RegExp): string[] {
  const match = pattern.exec(text(".ci/run"));
  if (!match) throw new Error(`.ci/run has no ${pattern}`);
  return match[1]!.replaceAll('"', "").trim().split(/\s+/);
}

const table = supportTable();
const row = (name: string) => {
  const found = table.get(name);
  if (!found) throw new Error(`the README's support table has no row "${name}"`);
  return found;
};

describe("the README's support table", () => {
  it("names the Node range of package.json's engines and the Nodes CI runs the suite on", () => {
    const floor = /^>=(\d+\.\d+)$/.exec(JSON.parse(text("package.json")).engines.node)![1]!;
    const ciNodes = ciList(/^NODE_VERSIONS=\(([^)]*)\)/m);
    expect(ciNodes[0]).toBe(`${floor}.0`);
    const [versions, how] = row("Node.js");
    expect(versions).toBe(`${floor} to ${ciNodes.at(-1)!.split(".")[0]}`);
    for (const node of ciNodes) expect(how).toContain(node);
  });

  it("names the PostgreSQL majors of the matrix, and each one CI runs", () => {
    const majors = Object.keys(EMBEDDED_POSTGRES).map(Number);
    const [versions, how] = row("PostgreSQL");
    expect(versions).toBe(`${Math.min(...majors)} to ${Math.max(...majors)}`);
    const runs = ciList(/^for run in ((?:"\d+ (?:whole|core)" ?)+); do/m);
    expect(runs.length).toBeGreaterThan(0);
    for (const major of runs.filter((word) => /^\d+$/.test(word))) expect(how).toContain(major);
  });

  it("names the Node of the bridge image and the PostgreSQL majors of the database image", () => {
    const nodeImage = /^FROM node:(\d+)-/m.exec(text("docker/bridge.Dockerfile"))![1]!;
    const pgDefault = /^ARG PG_MAJOR=(\d+)$/m.exec(text("docker/postgres.Dockerfile"))![1]!;
    const compose = parseYaml(text("docker-compose.yml"));
    expect(compose.services.postgres.build.args.PG_MAJOR).toBe(`\${PG_MAJOR:-${pgDefault}}`);
    const [versions] = row("Docker images");
    expect(versions).toContain(`Node ${nodeImage}`);
    expect(versions).toContain(`PostgreSQL ${pgDefault}`);
    for (const major of versions.match(/\b1\d\b/g) ?? []) {
      expect(Object.keys(EMBEDDED_POSTGRES)).toContain(major);
    }
  });
});
