import { afterAll } from "vitest";
import { settleDatabases } from "./test-database.ts";

/**
 * Registered for every test file (vitest.config.ts `setupFiles`). Its afterAll is the file's
 * outermost one and, hooks running as a stack, the last: every test's own cleanup has run by then.
 * It drops the file's databases, keeping and dumping those of failed tests.
 */
// Vitest reads the first parameter as a fixture request and insists on a destructuring pattern.
// eslint-disable-next-line no-empty-pattern
afterAll(async ({}, suite) => {
  const kept = await settleDatabases(suite.file);
  for (const report of kept) console.warn(report);
});
