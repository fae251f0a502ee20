import { afterAll, beforeAll, inject } from "vitest";
import { describeLeaks, findLeaks, takeBaseline, type FileBaseline } from "./leak-check.ts";
import {
  fileDatabases,
  serverUrl,
  sessionsAtDrop,
  setCurrentFile,
  settleDatabases,
} from "./test-database.ts";

/**
 * Registered for every test file (vitest.config.ts `setupFiles`). Its afterAll is the file's
 * outermost one and, hooks running as a stack, the last: every test's own cleanup has run by then.
 * It fails the file if anything was left behind (see leak-check.ts), then drops the file's
 * databases, keeping and dumping those of failed tests.
 */
let baseline: FileBaseline;

// Vitest reads a hook's first parameter as a fixture request and insists on a destructuring
// pattern; the suite, here the file, comes second.
// eslint-disable-next-line no-empty-pattern
beforeAll(({}, suite) => {
  baseline = takeBaseline();
  setCurrentFile(suite.file);
});

// eslint-disable-next-line no-empty-pattern
afterAll(async ({}, suite) => {
  // Before the databases are dropped: DROP ... WITH (FORCE) would end a leaked connection unseen.
  const leaks = await findLeaks(baseline, serverUrl(), inject("postgres").port, fileDatabases());
  // Databases dropped during the file (drop() of a passed test) were checked as they went.
  leaks.connections.unshift(...sessionsAtDrop.splice(0));
  const kept = await settleDatabases(suite.file);
  for (const report of kept) console.warn(report);
  const leaked = describeLeaks(leaks);
  if (leaked) throw new Error(`this test file left things behind:\n${leaked}`);
});
