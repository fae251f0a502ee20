import { createHash } from "node:crypto";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type PutObjectCommandOutput,
} from "@aws-sdk/client-s3";
import { describeError } from "./describe-error.ts";
import { isObjectKey, objectKey } from "./object-key.ts";
import type { ObjectInfo, ObjectKey, ObjectStore, StoreCallOptions } from "./object-store.ts";
import { StoreError, throwIfCancelled, type StoreErrorKind } from "./store-errors.ts";

export interface S3StoreOptions {
  bucket: string;
  /** Every key is stored as `<prefix>/<key>`; leading and trailing slashes are ignored. */
  prefix?: string;
  /** Default "us-east-1". */
  region?: string;
  /** For S3-compatible services (MinIO, Ceph RGW, ...); AWS itself needs none. */
  endpoint?: string;
  /** Path-style URLs (`endpoint/bucket/key`), which most S3-compatible services need. */
  forcePathStyle?: boolean;
  /**
   * Attempts per call, including the SDK's own retries with backoff. Default 3. openStore() sets 1:
   * there a RetryingStore does the retrying (see storage/retrying-store.ts for why).
   */
  maxAttempts?: number;
  /** A connection not made within this long fails the attempt (kind "timeout"). Default 10 s. */
  connectTimeoutMs?: number;
  /**
   * A socket silent this long, before or during the answer (headers or body), fails the attempt
   * (kind "timeout"). Default 60 s.
   */
  idleTimeoutMs?: number;
  /** Keys per ListObjectsV2 page (S3 caps it at 1000); lower only to exercise pagination. */
  listPageSize?: number;
  /**
   * For tests and sandboxes only. Real deployments leave this out and get credentials from the AWS
   * default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profiles, instance roles), so no
   * secret ever sits in pg-offload's configuration or catalog.
   */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

// A connection that cannot be made in 10 s, or a socket silent for 60 s, is treated as failed (kind
// "timeout") rather than left to hang a job: the SDK's own default is to wait forever. Both are
// configurable (PGOFFLOAD_S3_CONNECT_TIMEOUT_MS, PGOFFLOAD_S3_IDLE_TIMEOUT_MS), so tests can use
// short ones. The idle timeout is not a limit on a whole transfer: a slow upload that keeps
// moving bytes never hits it.
export const DEFAULT_S3_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_S3_IDLE_TIMEOUT_MS = 60_000;

/**
 * An ObjectStore on S3 or an S3-compatible service.
 *
 * Uploads declare their length and carry a Content-MD5, so the service rejects a truncated or
 * damaged upload instead of storing it; a PUT is atomic on S3, so no partial object is ever
 * visible. Reads check the body length against Content-Length. Aborting a call aborts its HTTP
 * request and rejects with kind "cancelled".
 *
 * Note: without s3:ListBucket permission S3 answers a GET of a missing key with 403, not 404; that
 * surfaces as kind "permission", not "not_found".
 */
export class S3Store implements ObjectStore {
  readonly description: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly listPageSize: number | undefined;

  constructor(options: S3StoreOptions) {
    this.bucket = options.bucket;
    const prefix = (options.prefix ?? "").replace(/^\/+|\/+$/g, "");
    this.prefix = prefix === "" ? "" : objectKey(prefix);
    this.listPageSize = options.listPageSize;
    const where = options.endpoint ? ` at ${options.endpoint}` : "";
    this.description = `s3://${this.bucket}/${this.prefix}${where}`;
    this.client = new S3Client({
      region: options.region ?? "us-east-1",
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle ?? false,
      maxAttempts: options.maxAttempts ?? 3,
      credentials: options.credentials,
      // Only the checksums an operation requires: the SDK's default adds CRC32 trailers to every
      // upload, which several S3-compatible services reject. Our Content-MD5 is checked everywhere.
      requestChecksumCalculation: "WHEN_REQUIRED",
      requestHandler: {
        connectionTimeout: options.connectTimeoutMs ?? DEFAULT_S3_CONNECT_TIMEOUT_MS,
        socketTimeout: options.idleTimeoutMs ?? DEFAULT_S3_IDLE_TIMEOUT_MS,
      },
    });
  }

  async put(key: ObjectKey, body: Uint8Array, options: StoreCallOptions = {}): Promise<void> {
    const { signal } = options;
    const fullKey = this.fullKey(key);
    throwIfCancelled(signal, { store: this.description, key });
    const md5 = createHash("md5").update(body).digest();
    const command = new PutObjectCommand({
      Bucket: this.bucket,
      Key: fullKey,
      Body: body,
      ContentLength: body.length,
      ContentMD5: md5.toString("base64"),
      ContentType: "application/octet-stream",
    });
    let answer: PutObjectCommandOutput;
    try {
      answer = await this.client.send(command, { abortSignal: signal });
    } catch (error) {
      throw this.storeError(error, "put failed", key, signal);
    }
    if (storedDifferentBytes(answer, md5)) {
      // Stored, but not what we sent; a retry overwrites it (the key is not committed anywhere yet).
      throw new StoreError(
        "unavailable",
        `put: the service stored other bytes (ETag ${answer.ETag}, Content-MD5 ${md5.toString("hex")})`,
        this.at(key),
      );
    }
  }

  async get(key: ObjectKey, options: StoreCallOptions = {}): Promise<Buffer> {
    const { signal } = options;
    const fullKey = this.fullKey(key);
    throwIfCancelled(signal, { store: this.description, key });
    try {
      const response = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: fullKey }),
        { abortSignal: signal },
      );
      if (!response.Body) throw new StoreError("other", "get: response has no body", this.at(key));
      const bytes = await readBody(response.Body, signal);
      // Node's HTTP client already fails a body cut short; this also catches a lying proxy.
      if (response.ContentLength !== undefined && bytes.length !== response.ContentLength) {
        throw new StoreError(
          "unavailable",
          `get: read ${bytes.length} bytes, Content-Length was ${response.ContentLength}`,
          this.at(key),
        );
      }
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (error) {
      throw this.storeError(error, "get failed", key, signal);
    }
  }

  async delete(key: ObjectKey, options: StoreCallOptions = {}): Promise<void> {
    const { signal } = options;
    const fullKey = this.fullKey(key);
    throwIfCancelled(signal, { store: this.description, key });
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: fullKey }), {
        abortSignal: signal,
      });
    } catch (error) {
      const mapped = this.storeError(error, "delete failed", key, signal);
      // S3 answers 204 for a missing key; some compatible services answer 404.
      if (mapped.kind !== "not_found") throw mapped;
    }
  }

  async *list(prefix: string, options: StoreCallOptions = {}): AsyncIterable<ObjectInfo> {
    const { signal } = options;
    const ours = this.prefix === "" ? "" : `${this.prefix}/`;
    let token: string | undefined;
    do {
      throwIfCancelled(signal, { store: this.description });
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: ours + prefix,
            ContinuationToken: token,
            MaxKeys: this.listPageSize,
          }),
          { abortSignal: signal },
        );
      } catch (error) {
        throw this.storeError(error, `list of "${prefix}" failed`, undefined, signal);
      }
      for (const object of page.Contents ?? []) {
        const key = object.Key?.slice(ours.length);
        // Objects under our prefix that no valid key names were not written by pg-offload.
        if (key === undefined || !object.Key?.startsWith(ours) || !isObjectKey(key)) continue;
        yield { key, size: object.Size ?? 0 };
      }
      if (page.IsTruncated && !page.NextContinuationToken) {
        throw new StoreError("other", "list: truncated page without a continuation token", {
          store: this.description,
        });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** Closes the client's pooled connections; the store cannot be used afterwards. */
  destroy(): void {
    this.client.destroy();
  }

  private fullKey(key: ObjectKey): string {
    // Validated again: a cast string must not escape the prefix.
    const valid = objectKey(key);
    return this.prefix === "" ? valid : `${this.prefix}/${valid}`;
  }

  private at(key?: string, cause?: unknown): { store: string; key?: string; cause?: unknown } {
    return { store: this.description, key, cause };
  }

  private storeError(
    error: unknown,
    what: string,
    key: string | undefined,
    signal: AbortSignal | undefined,
  ): StoreError {
    if (error instanceof StoreError) return error;
    // Whatever shape the SDK gave the failure, an aborted call is a cancelled call.
    if (signal?.aborted)
      return new StoreError("cancelled", `${what}: cancelled`, this.at(key, error));
    const { kind, retryable } = classifyS3Error(error);
    const detail = describeS3Error(error);
    return new StoreError(kind, `${what}: ${detail}`, { ...this.at(key, error), retryable });
  }
}

/**
 * S3, MinIO and Ceph refuse a body whose Content-MD5 does not match, but not every S3-compatible
 * service checks it (s3rver does not). A plain single-part PUT's ETag is the MD5 of the bytes
 * stored, so where the answer says the object is not encrypted (encrypted objects may carry other
 * ETags) a different ETag means bytes damaged on the way were stored.
 */
function storedDifferentBytes(answer: PutObjectCommandOutput, md5: Buffer): boolean {
  if (answer.ServerSideEncryption !== undefined || answer.SSECustomerAlgorithm !== undefined) {
    return false;
  }
  const etag = /^"?([0-9a-f]{32})"?$/i.exec(answer.ETag ?? "")?.[1];
  return etag !== undefined && etag.toLowerCase() !== md5.toString("hex");
}

async function readBody(
  body: { transformToByteArray(): Promise<Uint8Array> },
  signal: AbortSignal | undefined,
): Promise<Uint8Array> {
  if (!signal) return body.transformToByteArray();
  // The SDK's abort covers the request, not the body read that follows it: destroy the stream.
  const stream = body as { destroy?: (error?: Error) => void };
  // Destroyed with an error: destroyed without one, the stream would never settle the read.
  const destroy = () => stream.destroy?.(new Error("body read aborted"));
  signal.addEventListener("abort", destroy, { once: true });
  try {
    return await body.transformToByteArray();
  } finally {
    signal.removeEventListener("abort", destroy);
  }
}

interface S3ErrorShape {
  name?: string;
  message?: string;
  code?: string;
  Code?: string;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: number; requestId?: string };
  cause?: unknown;
}

// Error codes after which the same request, sent again, can succeed.
const TRANSIENT_S3_CODES = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "RequestThrottled",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "BandwidthLimitExceeded",
  "InternalError",
  "ServiceUnavailable",
  "OperationAborted",
  // The bytes were damaged or cut short on the way; a fresh upload can get through.
  "BadDigest",
  "IncompleteBody",
  "XAmzContentSHA256Mismatch",
  // A 403, but the SDK corrects its clock offset from the answer, so the next attempt is signed right.
  "RequestTimeTooSkewed",
]);

const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
]);

// @smithy's ChecksumStream and @aws-sdk/checksums' validateChecksumFromResponse both say this.
const RESPONSE_CHECKSUM_MISMATCH =
  /^Checksum mismatch: expected .* in response header "x-amz-checksum-/;

/** Sorts an SDK or network failure into a StoreError kind; exported for its tests. */
export function classifyS3Error(error: unknown): { kind: StoreErrorKind; retryable: boolean } {
  const e = (error ?? {}) as S3ErrorShape;
  const name = e.name ?? "";
  const status = e.$metadata?.httpStatusCode;
  const code = e.code ?? (e.cause as S3ErrorShape | undefined)?.code ?? "";
  if (name === "AbortError") return { kind: "cancelled", retryable: false };
  if (name === "NoSuchBucket") return { kind: "other", retryable: false };
  if (name === "NoSuchKey" || name === "NotFound" || status === 404) {
    return { kind: "not_found", retryable: false };
  }
  if (NETWORK_CODES.has(code) || /socket hang up/i.test(e.message ?? "")) {
    return { kind: "unavailable", retryable: true };
  }
  // The SDK checked the body against the x-amz-checksum-* header the service sent (AWS S3 in
  // checksum mode, moto, ...): the bytes were damaged on the way, and a new read can get them whole.
  // A plain Error, no name or code: its message is all there is to go on.
  if (RESPONSE_CHECKSUM_MISMATCH.test(e.message ?? "")) {
    return { kind: "unavailable", retryable: true };
  }
  if (name === "TimeoutError" || name === "RequestTimeout" || status === 408) {
    return { kind: "timeout", retryable: true };
  }
  if (TRANSIENT_S3_CODES.has(name) || status === 429 || (status !== undefined && status >= 500)) {
    return { kind: "unavailable", retryable: true };
  }
  if (status === 400) return { kind: "bad_input", retryable: false };
  if (status === 403) return { kind: "permission", retryable: false };
  return { kind: "other", retryable: e.$retryable !== undefined && e.$retryable !== false };
}

function describeS3Error(error: unknown): string {
  const e = (error ?? {}) as S3ErrorShape;
  const status = e.$metadata?.httpStatusCode;
  const parts = [e.name, status && `HTTP ${status}`, e.code].filter(Boolean);
  const message = describeError(error);
  return parts.length > 0 ? `${parts.join(" ")}: ${message}` : message;
}
