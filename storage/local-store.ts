import { randomUUID } from "node:crypto";
import { mkdirSync, type Dirent } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { describeError } from "./describe-error.ts";
import { isObjectKey, objectKey } from "./object-key.ts";
import type { ObjectInfo, ObjectKey, ObjectStore, StoreCallOptions } from "./object-store.ts";
import { StoreError, throwIfCancelled } from "./store-errors.ts";

/**
 * The top-level directory that holds uploads in progress. It sits inside the root so that the
 * final rename never crosses a file system; keys whose first segment is this name are refused, so
 * an object and a temporary file can never be confused.
 */
export const LOCAL_TEMP_DIR = ".pg-offload-tmp";

/**
 * An ObjectStore in a local directory: key `a/b/c` is the file `<root>/a/b/c`.
 *
 * Writes go to a temporary file that is counted, fsynced and then renamed into place, so a crash
 * or an abort never leaves a partial object under its real key (a crash may leave a stray file in
 * LOCAL_TEMP_DIR, which is never listed). Calls have no timeout of their own: a local disk either
 * answers or the machine has bigger problems. An aborted call rejects with kind "cancelled".
 */
export class LocalStore implements ObjectStore {
  readonly description: string;
  readonly root: string;
  private readonly tempDir: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.description = `local:${this.root}`;
    this.tempDir = join(this.root, LOCAL_TEMP_DIR);
    try {
      mkdirSync(this.tempDir, { recursive: true });
    } catch (error) {
      throw this.fsError(error, "cannot create the store directory");
    }
  }

  async put(key: ObjectKey, body: Uint8Array, options: StoreCallOptions = {}): Promise<void> {
    const { signal } = options;
    const path = this.pathOf(key);
    throwIfCancelled(signal, { store: this.description, key });
    const temp = join(this.tempDir, `${randomUUID()}.tmp`);
    let firstCreatedDir: string | undefined;
    try {
      await writeAndSync(temp, body);
      throwIfCancelled(signal, { store: this.description, key });
      firstCreatedDir = await mkdir(dirname(path), { recursive: true });
      // The last chance to honour an abort: after the rename the object is whole and stays.
      throwIfCancelled(signal, { store: this.description, key });
      await rename(temp, path);
    } catch (error) {
      const cleanupFailure = await rm(temp, { force: true }).then(
        () => undefined,
        (cleanupError: unknown) => cleanupError,
      );
      const cause = cleanupFailure ? new AggregateError([error, cleanupFailure]) : error;
      throw this.fsError(error, "put failed", key, cause);
    }
    try {
      await syncNewEntries(dirname(path), firstCreatedDir);
    } catch (error) {
      throw this.fsError(error, "put: syncing the directory failed", key);
    }
  }

  async get(key: ObjectKey, options: StoreCallOptions = {}): Promise<Buffer> {
    const path = this.pathOf(key);
    throwIfCancelled(options.signal, { store: this.description, key });
    try {
      return await readFile(path, { signal: options.signal });
    } catch (error) {
      // A directory where the object would be, or a file where a parent directory would be: either
      // way no object has this key.
      if (hasCode(error, "ENOENT", "ENOTDIR", "EISDIR")) {
        throw new StoreError("not_found", "object not found", {
          store: this.description,
          key,
          cause: error,
        });
      }
      throw this.fsError(error, "get failed", key);
    }
  }

  async delete(key: ObjectKey, options: StoreCallOptions = {}): Promise<void> {
    const path = this.pathOf(key);
    throwIfCancelled(options.signal, { store: this.description, key });
    try {
      await unlink(path);
    } catch (error) {
      if (hasCode(error, "ENOENT", "ENOTDIR", "EISDIR")) return;
      throw this.fsError(error, "delete failed", key);
    }
    // Empty parent directories stay: removing them would race with a concurrent put into them.
  }

  /** Yields keys in UTF-8 byte order, as S3 does. */
  async *list(prefix: string, options: StoreCallOptions = {}): AsyncIterable<ObjectInfo> {
    const slash = prefix.lastIndexOf("/");
    const dirKey = slash < 0 ? "" : prefix.slice(0, slash);
    // No valid key can lie under a directory part that is not itself a valid key.
    if (dirKey !== "" && !(isObjectKey(dirKey) && !isTempKey(dirKey))) return;
    yield* this.walk(dirKey, prefix.slice(slash + 1), options.signal);
  }

  private async *walk(
    dirKey: string,
    namePrefix: string,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<ObjectInfo> {
    throwIfCancelled(signal, { store: this.description });
    let entries: Dirent[];
    try {
      entries = await readdir(join(this.root, dirKey), { withFileTypes: true });
    } catch (error) {
      if (hasCode(error, "ENOENT", "ENOTDIR")) return;
      throw this.fsError(error, `list failed in directory "${dirKey}"`);
    }
    // Sorting a directory's entries as "name" for files and "name/" for directories and walking
    // depth first yields every key in byte order without collecting the whole tree first.
    const candidates = entries
      .filter((entry) => entry.name.startsWith(namePrefix))
      .filter((entry) => !(dirKey === "" && entry.name === LOCAL_TEMP_DIR))
      .map((entry) => ({
        entry,
        order: Buffer.from(entry.isDirectory() ? `${entry.name}/` : entry.name),
      }))
      .sort((a, b) => Buffer.compare(a.order, b.order));
    for (const { entry } of candidates) {
      const key = dirKey === "" ? entry.name : `${dirKey}/${entry.name}`;
      // Files that no key could name (put there by hand) are not objects of this store.
      if (!isObjectKey(key)) continue;
      if (entry.isDirectory()) {
        yield* this.walk(key, "", signal);
      } else if (entry.isFile()) {
        const size = await this.sizeOf(key);
        if (size !== undefined) yield { key, size };
      }
    }
  }

  /** The size of an object, or undefined when it was deleted since its directory was read. */
  private async sizeOf(key: ObjectKey): Promise<number | undefined> {
    try {
      return (await stat(join(this.root, key))).size;
    } catch (error) {
      if (hasCode(error, "ENOENT")) return undefined;
      throw this.fsError(error, "list: stat failed", key);
    }
  }

  private pathOf(key: ObjectKey): string {
    // Validated again: a cast string must not reach the file system unchecked.
    const valid = objectKey(key);
    if (isTempKey(valid)) {
      throw new StoreError("bad_input", `keys under ${LOCAL_TEMP_DIR}/ are reserved`, {
        store: this.description,
        key,
      });
    }
    return join(this.root, valid);
  }

  private fsError(error: unknown, what: string, key?: string, cause: unknown = error): StoreError {
    if (error instanceof StoreError) return error;
    const context = { store: this.description, key, cause };
    if ((error as Error | null)?.name === "AbortError") {
      return new StoreError("cancelled", "store call cancelled", context);
    }
    const code = (error as NodeJS.ErrnoException | null)?.code ?? "";
    const reason = `${what}: ${describeError(error)}`;
    switch (code) {
      case "ENAMETOOLONG":
        return new StoreError(
          "bad_input",
          `${what}: a key segment is too long for the file system`,
          context,
        );
      case "ENOTDIR":
      case "EISDIR":
      case "EEXIST":
        // S3 can hold both "a" and "a/b"; a file system cannot.
        return new StoreError(
          "bad_input",
          `${what}: the key collides with another key's file or directory`,
          context,
        );
      case "ENOSPC":
      case "EDQUOT":
        return new StoreError("no_space", reason, context);
      case "EACCES":
      case "EPERM":
      case "EROFS":
        return new StoreError("permission", reason, context);
      case "EMFILE":
      case "ENFILE":
      case "EAGAIN":
      case "EBUSY":
        return new StoreError("unavailable", reason, context);
      default:
        return new StoreError("other", reason, context);
    }
  }
}

function isTempKey(key: string): boolean {
  return key === LOCAL_TEMP_DIR || key.startsWith(`${LOCAL_TEMP_DIR}/`);
}

function hasCode(error: unknown, ...codes: string[]): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code !== undefined && codes.includes(code);
}

/** Writes all of `body` to a new file and fsyncs it; a short write is an error, never an object. */
async function writeAndSync(path: string, body: Uint8Array): Promise<void> {
  const handle = await open(path, "wx");
  try {
    let written = 0;
    while (written < body.length) {
      const { bytesWritten } = await handle.write(body, written, body.length - written);
      if (bytesWritten === 0) break;
      written += bytesWritten;
    }
    if (written !== body.length) {
      throw new Error(`wrote ${written} of ${body.length} bytes to ${path}`);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * A rename is durable only once the directory holding the new name is synced, and a directory that
 * mkdir just created only once its parent is: sync from the object's directory up to the parent of
 * the first directory created.
 */
async function syncNewEntries(
  objectDir: string,
  firstCreatedDir: string | undefined,
): Promise<void> {
  const stop = firstCreatedDir === undefined ? objectDir : dirname(firstCreatedDir);
  for (let dir = objectDir; ; dir = dirname(dir)) {
    const handle = await open(dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (dir === stop || dir === dirname(dir)) break;
  }
}
