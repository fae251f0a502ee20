/**
 * Who may reach the read endpoint: nobody but the PostgreSQL server's OS user.
 *
 * Over a unix socket, the socket lives in a directory of mode 0700 owned by the database's OS user
 * (the bridge runs as that user, or as root and hands the directory over). Over TCP, every request
 * carries a secret read from a file of mode 0600 on the database host; the catalog (readable by
 * every database user) only ever holds the file's path.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { createConnection } from "node:net";
import {
  chmod,
  chown,
  link,
  lstat,
  mkdir,
  readFile,
  stat,
  unlink,
  writeFile,
} from "node:fs/promises";
import { dirname } from "node:path";
import type pg from "pg";

/** The OS account PostgreSQL runs as, found by the owner of its data directory. */
export interface DatabaseOsUser {
  uid: number;
  gid: number;
  dataDirectory: string;
}

export class EndpointAccessError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(`pg-offload read endpoint: ${message}`, options);
    this.name = "EndpointAccessError";
  }
}

const RUNNING_AS_ROOT = process.getuid?.() === 0;

/** Undefined when the data directory is not visible here (the bridge runs on another host). */
export async function databaseOsUser(db: pg.Pool): Promise<DatabaseOsUser | undefined> {
  const { rows } = await db.query<{ dir: string }>(
    "SELECT current_setting('data_directory') AS dir",
  );
  const dataDirectory = rows[0]?.dir ?? "";
  try {
    const { uid, gid } = await stat(dataDirectory);
    return { uid, gid, dataDirectory };
  } catch {
    return undefined;
  }
}

/**
 * Makes `dir` a directory only the database's OS user can enter, refusing one that others can
 * reach already (an operator's mistake such as /tmp itself) rather than changing its mode.
 */
export async function preparePrivateDirectory(
  dir: string,
  owner: DatabaseOsUser | undefined,
): Promise<void> {
  if (!owner) {
    throw new EndpointAccessError(
      "a unix socket needs the bridge on the database host, and the database's data directory " +
        "is not visible here; set PGOFFLOAD_READ_LISTEN=tcp",
    );
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await stat(dir);
  if ((info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8);
    throw new EndpointAccessError(
      `directory ${dir} is reachable by other users (mode ${mode}); use a directory of mode 700`,
    );
  }
  await handOver(dir, info.uid, owner);
}

/** Removes a socket left by a bridge that died; refuses to take over one a live bridge uses. */
export async function clearStaleSocket(path: string): Promise<void> {
  const info = await lstat(path).catch(() => undefined);
  if (!info) return;
  if (!info.isSocket()) {
    throw new EndpointAccessError(`${path} exists and is not a socket`);
  }
  if (await socketIsLive(path)) {
    throw new EndpointAccessError(`another bridge already listens on ${path}`);
  }
  await unlink(path).catch((error: unknown) => {
    // Another bridge starting at the same moment removed it first: just as good.
    if ((error as { code?: string }).code !== "ENOENT") throw error;
  });
}

/**
 * Whether a process accepts connections on the socket at `path`. Refused (nobody listens: the
 * bridge that made it died) and gone are answers; any other failure (no permission, say) is not,
 * and is thrown rather than taken for "stale".
 */
export function socketIsLive(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = createConnection(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", (error: NodeJS.ErrnoException) => {
      probe.destroy();
      if (error.code === "ECONNREFUSED" || error.code === "ENOENT") resolve(false);
      else
        reject(
          new EndpointAccessError(`cannot tell whether a bridge listens on ${path}`, {
            cause: error,
          }),
        );
    });
  });
}

/** The socket itself: connecting needs write permission on it, for the database's user only. */
export async function restrictSocket(path: string, owner: DatabaseOsUser): Promise<void> {
  await chmod(path, 0o600);
  await handOver(path, (await stat(path)).uid, owner);
}

/**
 * The secret TCP requests must carry: read from `file`, or created there (32 random bytes, hex)
 * when the file does not exist yet. A file others can read is refused.
 */
export async function loadReadSecret(
  file: string,
  owner: DatabaseOsUser | undefined,
): Promise<Buffer> {
  const createdDir = await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  if (createdDir && owner) await handOver(createdDir, (await stat(createdDir)).uid, owner);
  await createSecretOnce(file);
  const info = await stat(file);
  if ((info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8);
    throw new EndpointAccessError(
      `secret file ${file} is readable by other users (mode ${mode}); chmod 600 it`,
    );
  }
  const secret = (await readFile(file, "utf8")).trim();
  if (secret.length < 16 || /\s/.test(secret)) {
    throw new EndpointAccessError(
      `secret file ${file} must hold one word of at least 16 characters`,
    );
  }
  if (owner) await handOver(file, info.uid, owner);
  return Buffer.from(secret);
}

/**
 * Writes a new secret to `file` unless one is there. Written aside and linked into place, so that
 * a bridge starting at the same moment reads either no file or the whole secret, never a part.
 */
async function createSecretOnce(file: string): Promise<void> {
  const scratch = `${file}.${process.pid}.${randomBytes(4).toString("hex")}`;
  await writeFile(scratch, randomBytes(32).toString("hex") + "\n", { mode: 0o600, flag: "wx" });
  try {
    await link(scratch, file).catch((error: unknown) => {
      if ((error as { code?: string }).code !== "EEXIST") throw error;
    });
  } finally {
    await unlink(scratch);
  }
}

/** Compares digests so that neither the secret's bytes nor its length leak through timing. */
export function carriesSecret(authorization: string | undefined, secret: Buffer): boolean {
  const token = /^Bearer (\S+)$/.exec(authorization ?? "")?.[1];
  if (token === undefined) return false;
  const digest = (value: Buffer) => createHash("sha256").update(value).digest();
  return timingSafeEqual(digest(Buffer.from(token)), digest(secret));
}

async function handOver(path: string, currentUid: number, owner: DatabaseOsUser): Promise<void> {
  if (currentUid === owner.uid) return;
  if (RUNNING_AS_ROOT) {
    await chown(path, owner.uid, owner.gid);
    return;
  }
  throw new EndpointAccessError(
    `${path} belongs to uid ${currentUid}, but PostgreSQL runs as uid ${owner.uid} ` +
      `(owner of ${owner.dataDirectory}); run the bridge as that user or as root`,
  );
}
