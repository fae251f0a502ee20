import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startS3Server, type LocalS3 } from "../../sandbox/s3-server.ts";
import { objectKey } from "../../storage/object-key.ts";
import type { ObjectStore } from "../../storage/object-store.ts";
import { S3Store, type S3StoreOptions } from "../../storage/s3-store.ts";
import { StoreError } from "../../storage/store-errors.ts";
import { storeFailure } from "../support/store-assertions.ts";

const credentials = { accessKeyId: "test", secretAccessKey: "test" };

async function keys(store: ObjectStore, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const { key } of store.list(prefix)) out.push(key);
  return out;
}

function s3ErrorXml(code: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code} from the test server</Message><RequestId>test</RequestId></Error>`;
}

/**
 * A bare HTTP server standing in for S3, so that each test can answer exactly what a real service
 * sends when things go wrong: error codes, dropped connections, short bodies, silence.
 */
describe("S3Store against scripted HTTP answers", () => {
  let server: Server;
  let endpoint: string;
  let handler: (req: IncomingMessage, body: Buffer, res: ServerResponse) => void;
  const requests: Array<{ method?: string; url?: string; headers: IncomingMessage["headers"] }> =
    [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on("data", (part: Buffer) => parts.push(part));
      req.on("end", () => {
        requests.push({ method: req.method, url: req.url, headers: req.headers });
        handler(req, Buffer.concat(parts), res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  function storeWith(options: Partial<S3StoreOptions> = {}): S3Store {
    requests.length = 0;
    return new S3Store({
      bucket: "bucket",
      prefix: "pre/fix/",
      endpoint,
      forcePathStyle: true,
      credentials,
      maxAttempts: 1,
      ...options,
    });
  }

  function answer(status: number, code: string): void {
    handler = (_req, _body, res) => {
      res.writeHead(status, { "content-type": "application/xml" }).end(s3ErrorXml(code));
    };
  }

  it("put sends the length and a Content-MD5 of the body, under the prefix, and nothing else", async () => {
    handler = (_req, _body, res) => res.writeHead(200).end();
    const store = storeWith();
    const body = Buffer.from("chunk bytes");
    await store.put(objectKey("seg/000001.chunk"), body);
    const [request] = requests;
    expect(request?.method).toBe("PUT");
    expect(request?.url?.split("?")[0]).toBe("/bucket/pre/fix/seg/000001.chunk");
    expect(request?.headers["content-length"]).toBe(String(body.length));
    expect(request?.headers["content-md5"]).toBe(createHash("md5").update(body).digest("base64"));
    // No aws-chunked trailers or CRC headers that S3-compatible services may refuse.
    expect(request?.headers["content-encoding"]).toBeUndefined();
    expect(
      Object.keys(request?.headers ?? {}).filter((h) => h.startsWith("x-amz-checksum")),
    ).toEqual([]);
    expect(store.description).toBe(`s3://bucket/pre/fix at ${endpoint}`);
    store.destroy();
  });

  it.each([
    [404, "NoSuchKey", "not_found", false],
    [404, "NoSuchBucket", "other", false],
    [403, "AccessDenied", "permission", false],
    [403, "RequestTimeTooSkewed", "unavailable", true],
    [400, "InvalidArgument", "bad_input", false],
    [400, "BadDigest", "unavailable", true],
    [400, "RequestTimeout", "timeout", true],
    [503, "SlowDown", "unavailable", true],
    [500, "InternalError", "unavailable", true],
  ])("an HTTP %i %s becomes kind %s (retryable: %s)", async (status, code, kind, retryable) => {
    answer(status, code);
    const store = storeWith();
    const error = await storeFailure(store.get(objectKey("k")));
    expect(error.kind).toBe(kind);
    expect(error.retryable).toBe(retryable);
    expect(error.key).toBe("k");
    expect(error.message).toContain(code);
    store.destroy();
  });

  it("retries server errors within the call, up to maxAttempts", async () => {
    answer(500, "InternalError");
    const store = storeWith({ maxAttempts: 3 });
    expect((await storeFailure(store.put(objectKey("k"), Buffer.from("x")))).kind).toBe(
      "unavailable",
    );
    expect(requests.length).toBe(3);
    store.destroy();
  });

  it("a dropped connection is unavailable and retryable", async () => {
    handler = (req) => req.socket.destroy();
    const store = storeWith();
    const error = await storeFailure(store.get(objectKey("k")));
    expect(error.kind).toBe("unavailable");
    expect(error.retryable).toBe(true);
    store.destroy();
  });

  it("a body cut short is an error, never a short object", async () => {
    handler = (req, _body, res) => {
      res.writeHead(200, { "content-length": "100" });
      res.write(Buffer.alloc(50), () => req.socket.destroy());
    };
    const store = storeWith();
    const error = await storeFailure(store.get(objectKey("k")));
    expect(error.retryable).toBe(true);
    store.destroy();
  });

  it("a call to a silent server rejects with cancelled as soon as it is aborted", async () => {
    handler = () => {};
    const store = storeWith();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const started = Date.now();
    const error = await storeFailure(store.get(objectKey("k"), { signal: controller.signal }));
    expect(error.kind).toBe("cancelled");
    expect(Date.now() - started).toBeLessThan(5_000);
    store.destroy();
  });
});

describe("S3Store prefixes on s3rver", () => {
  let s3: LocalS3;
  let whole: S3Store;

  beforeAll(async () => {
    s3 = await startS3Server({ bucket: "prefix-test" });
    whole = new S3Store({ ...s3, forcePathStyle: true });
  });

  afterAll(async () => {
    whole?.destroy();
    await s3?.stop();
  });

  it("keeps each store inside its prefix and lists keys without it", async () => {
    const a = new S3Store({ ...s3, prefix: "/tenant-a/", forcePathStyle: true, listPageSize: 1 });
    const b = new S3Store({ ...s3, prefix: "tenant-b", forcePathStyle: true });
    await a.put(objectKey("x/1"), Buffer.from("a1"));
    await a.put(objectKey("x/2"), Buffer.from("a2"));
    await b.put(objectKey("x/1"), Buffer.from("b1"));
    expect(await keys(a)).toEqual(["x/1", "x/2"]);
    expect(await keys(b)).toEqual(["x/1"]);
    expect(await keys(whole)).toEqual(["tenant-a/x/1", "tenant-a/x/2", "tenant-b/x/1"]);
    expect((await b.get(objectKey("x/1"))).toString()).toBe("b1");
    a.destroy();
    b.destroy();
  });

  it("skips objects under its prefix that no valid key names", async () => {
    const client = new S3Client({
      region: s3.region,
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: s3.credentials,
    });
    await client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: "mixed/back\\slash", Body: "x" }),
    );
    const raw = await client.send(
      new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: "mixed/" }),
    );
    expect(raw.Contents?.map((o) => o.Key)).toEqual(["mixed/back\\slash"]);
    client.destroy();
    const store = new S3Store({ ...s3, prefix: "mixed", forcePathStyle: true });
    await store.put(objectKey("fine"), Buffer.from("x"));
    expect(await keys(store)).toEqual(["fine"]);
    store.destroy();
  });

  it("refuses a prefix that is not a valid key", () => {
    expect(() => new S3Store({ ...s3, prefix: "a/../b" })).toThrow(StoreError);
  });
});
