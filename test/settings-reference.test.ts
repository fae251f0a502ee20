import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { settingsReference } from "../bridge/settings-reference.ts";

/** The table under the README's "### Configuration reference" heading, as written. */
function readmeReference(): string {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const section = readme.split(/^### Configuration reference$/m)[1]?.split(/^#/m)[0] ?? "";
  return section
    .split("\n")
    .filter((line) => line.startsWith("|"))
    .join("\n");
}

describe("the README's configuration reference", () => {
  it("is the one generated from the settings table (npm run docs:settings prints it)", () => {
    const generated = settingsReference();
    expect(generated.split("\n").length).toBeGreaterThan(40);
    expect(readmeReference()).toBe(generated);
  });
});
