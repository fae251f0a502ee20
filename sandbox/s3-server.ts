import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

/** A throwaway S3 protocol server (s3rver) for the tests, the demo and the benchmark. */
export interface LocalS3 {
  /** e.g. "http://127.0.0.1:41234"; clients must use path-style URLs (forcePathStyle: true). */
  endpoint: string;
  bucket: string;
  region: string;
  /** s3rver's fixed key pair; it accepts no other. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Stops the server and removes its directory; safe to call twice. */
  stop(): Promise<void>;
}

const S3_BUCKET_NAME = /^(?!\d+\.\d+\.\d+\.\d+$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;

// Runs in the child. It prints the bound port once listening, and exits when its stdin closes, so
// a parent that dies without calling stop() does not leave the server behind.
const CHILD_PROGRAM = `
const [modulePath, directory, bucket] = process.argv.slice(1);
const S3rver = require(modulePath);
const server = new S3rver({
  address: "127.0.0.1", port: 0, directory, silent: true, vhostBuckets: false,
  configureBuckets: [{ name: bucket }],
});
const stop = () => {
  const closed = server.close();
  server.httpServer.closeAllConnections();
  closed.finally(() => process.exit(0));
};
server.run().then(
  (address) => {
    process.stdout.write(JSON.stringify({ port: address.port }) + "\\n");
    process.on("SIGTERM", stop);
    process.stdin.on("end", stop).resume();
  },
  (error) => { console.error(error); process.exit(1); },
);
`;

/**
 * Starts s3rver on 127.0.0.1 on a free port, in a fresh directory, with one bucket.
 *
 * It runs in a child process started with --openssl-legacy-provider: s3rver encrypts ListObjectsV2
 * continuation tokens with DES, which OpenSSL 3 only offers from its legacy provider, so without
 * the flag every paginated listing fails with HTTP 500.
 */
export async function startS3Server(options: { bucket?: string } = {}): Promise<LocalS3> {
  const bucket = options.bucket ?? "pg-offload-test";
  if (!S3_BUCKET_NAME.test(bucket) || bucket.includes("..")) {
    throw new Error(`pg-offload sandbox: "${bucket}" is not a valid S3 bucket name`);
  }
  const modulePath = createRequire(import.meta.url).resolve("s3rver");
  const directory = await mkdtemp(join(tmpdir(), "pg-offload-s3-"));
  const child = spawn(
    process.execPath,
    ["--openssl-legacy-provider", "-e", CHILD_PROGRAM, modulePath, directory, bucket],
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));

  let port: number;
  try {
    port = await readPort(child);
  } catch (error) {
    child.kill("SIGKILL");
    await rm(directory, { recursive: true, force: true });
    throw new Error(`pg-offload sandbox: s3rver did not start: ${stderr.trim()}`, { cause: error });
  }

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, "exit");
        child.stdin.end();
        // s3rver closes in milliseconds; one that hangs is killed rather than hanging the caller.
        const killer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(killer);
      }
      await rm(directory, { recursive: true, force: true });
    })();
    return stopping;
  };

  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    region: "us-east-1",
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    stop,
  };
}

function readPort(child: ChildProcessWithoutNullStreams): Promise<number> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    const finish = (outcome: { port: number } | { error: Error }) => {
      clearTimeout(timer);
      child.off("exit", onExit).off("error", onError);
      lines.close();
      if ("port" in outcome) resolve(outcome.port);
      else reject(outcome.error);
    };
    const timer = setTimeout(
      () => finish({ error: new Error(`no port after ${START_TIMEOUT_MS} ms`) }),
      START_TIMEOUT_MS,
    );
    const onExit = (code: number | null, signal: string | null) =>
      finish({ error: new Error(`exited during start (code ${code}, signal ${signal})`) });
    const onError = (error: Error) => finish({ error });
    child.once("exit", onExit).once("error", onError);
    lines.once("line", (line) => {
      const port = (JSON.parse(line) as { port?: unknown }).port;
      if (typeof port === "number") finish({ port });
      else finish({ error: new Error(`unexpected start line: ${line}`) });
    });
  });
}
