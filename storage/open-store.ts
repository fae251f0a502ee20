import { LocalStore } from "./local-store.ts";
import type { ObjectStore } from "./object-store.ts";
import { S3Store } from "./s3-store.ts";

/**
 * Where chunks live, as configured. Credentials are deliberately absent: S3 gets them from the AWS
 * default chain, so configuration files and the catalog never hold a secret.
 */
export type StoreConfig =
  | { kind: "local"; dir: string }
  | {
      kind: "s3";
      bucket: string;
      prefix?: string;
      region?: string;
      endpoint?: string;
      forcePathStyle?: boolean;
    };

export function openStore(config: StoreConfig): ObjectStore {
  switch (config.kind) {
    case "local":
      return new LocalStore(config.dir);
    case "s3":
      return new S3Store(config);
    default: {
      const unknown: never = config;
      throw new Error(`unknown store kind in ${JSON.stringify(unknown)}`);
    }
  }
}
