import { afterAll, beforeAll, inject } from "vitest";
import { describeLeaks, findLeaks, takeBaseline, type FileBaseline } from "./leak-check.ts";
import { fileDatabases, serverUrl, settleDatabases } from "./test-database.ts";

/**
 * Registered for every test file (vitest.config.ts `setupFiles`). Its afterAll is the file's
 * outermost one and, hooks running as a stack, the last: every test's own cleanup has run by then.
 * It fails the file if anything was left behind (see leak-check.ts), then drops the file's
 * databases, keeping and dumping those of failed tests.
 */
let baseline: FileBaseline;

beforeAll(() => {
  baseline = takeBaseline();
});

// Vitest reads the first parameter as a fixture request and insists on a destructuring pattern.
// eslint-disable-next-line no-empty-pattern
afterAll(async ({}, suite) => {
  // Before the databases are dropped: DROP ... WITH (FORCE) would end a leaked connection unseen.
  const leaks = await findLeaks(baseline, serverUrl(), inject("postgres").port, fileDatabases());
  const kept = await settleDatabases(suite.file);
  for (const report of kept) console.warn(report);
  const leaked = describeLeaks(leaks);
  if (leaked) throw new Error(`this test file left things behind:\n${leaked}`);
});
