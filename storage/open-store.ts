import { LocalStore } from "./local-store.ts";
import type { ObjectStore } from "./object-store.ts";
import {
  DEFAULT_RETRY_POLICY,
  RetryingStore,
  type RetryEvent,
  type RetryPolicy,
} from "./retrying-store.ts";
import { S3Store } from "./s3-store.ts";

/**
 * Where chunks live, as configured. Credentials are deliberately absent: S3 gets them from the AWS
 * default chain, so configuration files and the catalog never hold a secret.
 */
export type StoreConfig = (
  | { kind: "local"; dir: string }
  | {
      kind: "s3";
      bucket: string;
      prefix?: string;
      region?: string;
      endpoint?: string;
      forcePathStyle?: boolean;
      connectTimeoutMs?: number;
      idleTimeoutMs?: number;
    }
) & {
  /** How each store call retries; unset fields take DEFAULT_RETRY_POLICY's. */
  retry?: Partial<RetryPolicy>;
};

export interface OpenStoreOptions {
  /** Told of every failed attempt that will be retried (the bridge logs them). */
  onRetry?: (event: RetryEvent) => void;
}

/**
 * Opens the configured store behind a RetryingStore. The S3 client's own retries are turned off
 * (maxAttempts 1): the wrapper's one budget of attempts and deadline covers all of a call, the body
 * read included, which the SDK's retries do not (see retrying-store.ts).
 */
export function openStore(config: StoreConfig, options: OpenStoreOptions = {}): RetryingStore {
  const policy = { ...DEFAULT_RETRY_POLICY, ...config.retry };
  return new RetryingStore(backend(config), policy, options.onRetry);
}

function backend(config: StoreConfig): ObjectStore {
  switch (config.kind) {
    case "local":
      return new LocalStore(config.dir);
    case "s3":
      return new S3Store({ ...config, maxAttempts: 1 });
    default: {
      const unknown: never = config;
      throw new Error(`unknown store kind in ${JSON.stringify(unknown)}`);
    }
  }
}
