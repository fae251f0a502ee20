import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/test-database.ts";
import { offloadSchemaDump } from "../support/schema-dump.ts";
import { pgDumpPath } from "../support/server-tools.ts";

// A fresh install must be what test/schema/snapshot.sql says, object by object: a change to the
// schema (a migration, a function, a grant) shows up here as a diff to commit with it. After an
// intended change: `npx vitest run test/schema/schema-snapshot.test.ts -u` rewrites the file.
describe.skipIf(!pgDumpPath("the schema snapshot"))("schema snapshot", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase("schema-snapshot");
  });
  afterAll(async () => {
    await db?.drop();
  });

  it("a fresh install is exactly the committed snapshot", async () => {
    await expect(await offloadSchemaDump(db.url)).toMatchFileSnapshot("./snapshot.sql");
  });
});
