/**
 * One interface for every place chunks can live (a local directory, any S3-compatible service).
 *
 * Keys are relative, slash-separated paths; `objectKey()` rejects absolute paths and `..` so that a
 * key can never escape the store's root or prefix. Objects are immutable: a key is written once
 * and never overwritten by pg-offload (see DESIGN.md decision 5).
 *
 * Every method takes an AbortSignal; aborting rejects the call with a StoreError of kind
 * "cancelled" and leaves no partial object behind.
 */
export interface ObjectStore {
  /** A short human description for logs and errors, e.g. "local:/var/lib/pg-offload" or "s3://bucket/prefix". */
  readonly description: string;

  /** Stores `body` under `key`. Resolves only once the object is durable and complete. */
  put(key: ObjectKey, body: Uint8Array, options?: StoreCallOptions): Promise<void>;

  /** Reads a whole object. Rejects with kind "not_found" when it does not exist. */
  get(key: ObjectKey, options?: StoreCallOptions): Promise<Buffer>;

  /** Removes an object; removing a missing object is not an error. */
  delete(key: ObjectKey, options?: StoreCallOptions): Promise<void>;

  /** Lists objects whose key starts with `prefix` (a plain string prefix, not only folders). */
  list(prefix: string, options?: StoreCallOptions): AsyncIterable<ObjectInfo>;
}

export interface StoreCallOptions {
  signal?: AbortSignal;
}

export interface ObjectInfo {
  key: ObjectKey;
  size: number;
}

declare const objectKeyBrand: unique symbol;
/** A validated relative key; build one with objectKey(). */
export type ObjectKey = string & { readonly [objectKeyBrand]: true };
