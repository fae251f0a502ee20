import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    globalSetup: ["test/support/global-setup.ts"],
    // Per file: fails a file that leaves a process, connection or listening socket behind, and
    // keeps the databases of failed tests (test/support/file-hooks.ts).
    setupFiles: ["test/support/file-hooks.ts"],
    include: ["test/**/*.test.ts"],
    // The JSON report lets CI print a plain "N passed, N failed" line.
    reporters: ["default", ["json", { outputFile: ".tmp/test-results.json" }]],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // One PostgreSQL serves every file; two cores do not gain from more parallel files.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
