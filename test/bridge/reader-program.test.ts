import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listening } from "../../bridge/http-listen.ts";
import { readerProgram, type ReaderTarget } from "../../bridge/reader-program.ts";

/** Runs a reader program as file_fdw does (/bin/sh -c), with what it printed and its exit. */
function runProgram(program: string) {
  return new Promise<{ stdout: string; code: number | null }>((resolve, reject) => {
    const child = spawn("/bin/sh", ["-c", program], { stdio: ["ignore", "pipe", "ignore"] });
    let stdout = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ stdout, code }));
  });
}

describe("a reader program naming several endpoints", () => {
  let dir: string;
  const servers: Server[] = [];
  const unix = (name: string): ReaderTarget => ({
    kind: "unix",
    socketPath: join(dir, `${name}.sock`),
  });

  async function serve(name: string, answer: (res: import("node:http").ServerResponse) => void) {
    const server = createServer((_req, res) => answer(res));
    servers.push(server);
    await listening(server, () => server.listen(join(dir, `${name}.sock`)));
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pgo-reader-"));
    await serve("good", (res) => res.end("1\tfrom good\n"));
    // Sends one row, then the connection breaks: a bridge dying in the middle of a scan.
    await serve("breaks", (res) => {
      res.writeHead(200, { "content-length": "1000" });
      res.write("1\tpartial\n", () => res.socket?.destroy());
    });
    await serve("refuses", (res) => {
      res.statusCode = 503;
      res.end();
    });
  });

  afterAll(async () => {
    for (const server of servers) server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("goes on to the next endpoint when one cannot be connected to", async () => {
    const program = readerProgram([unix("gone"), unix("also-gone"), unix("good")], 1, 1);
    expect(await runProgram(program)).toEqual({ stdout: "1\tfrom good\n", code: 0 });
  });

  it("stops at a transfer cut short: the rows already sent are never sent again", async () => {
    const program = readerProgram([unix("gone"), unix("breaks"), unix("good")], 1, 1);
    const { stdout, code } = await runProgram(program);
    expect(stdout).toBe("1\tpartial\n");
    expect(code).not.toBe(0);
  });

  it("stops at an HTTP error, which the bridge answered", async () => {
    const program = readerProgram([unix("refuses"), unix("good")], 1, 1);
    expect(await runProgram(program)).toEqual({ stdout: "", code: 22 });
  });

  it("fails as curl does when no endpoint can be connected to", async () => {
    const program = readerProgram([unix("gone"), unix("also-gone")], 1, 1);
    expect(await runProgram(program)).toEqual({ stdout: "", code: 7 });
  });
});
