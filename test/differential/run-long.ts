// npm run test:differential -- [--queries 5000] [--seed N]
// The differential tester's long run: the same test as in `npm test`, with more queries per table
// (default 5000) and the seed given or random; prints the seed first, so a failure can be rerun.
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { queries: { type: "string", default: "5000" }, seed: { type: "string" } },
});
const seed = values.seed ?? String(Math.floor(Math.random() * 2 ** 31));
if (!/^\d+$/.test(seed) || !/^\d+$/.test(values.queries)) {
  console.error("--queries and --seed take whole numbers");
  process.exit(2);
}
console.log(`differential long run: ${values.queries} queries per table, seed ${seed}`);
const vitest = spawnSync("npx", ["vitest", "run", "test/differential/differential.test.ts"], {
  stdio: "inherit",
  env: { ...process.env, DIFF_SEED: seed, DIFF_QUERIES: values.queries },
});
process.exit(vitest.status ?? 1);
