import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";

/**
 * What a test file may not leave behind once its own hooks have run: processes it started,
 * connections to the run's PostgreSQL server, listening sockets. Read from /proc (Linux), so that
 * it sees what really exists, not what the test's objects believe.
 */

/**
 * The environment variable that marks every process a test file starts. Children inherit the
 * environment, and so do their children and the daemons they detach (pg_ctl's postmaster, which
 * leaves the process tree): the mark finds them all where a parent-pid walk would not.
 */
// Not PGOFFLOAD_*: the bridge refuses variables of its prefix that it does not know.
export const FILE_MARK = "PGO_TEST_FILE_MARK";

/** Marks this worker's environment for the file about to run; returns the mark. */
export function markFile(): string {
  const mark = randomBytes(8).toString("hex");
  process.env[FILE_MARK] = mark;
  return mark;
}

/** Processes (other than this one) whose environment carries the mark. */
export function markedProcesses(mark: string): { pid: number; command: string }[] {
  const needle = `${FILE_MARK}=${mark}`;
  const found: { pid: number; command: string }[] = [];
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      // Each variable ends with a NUL: split and compare whole, so no mark matches as a prefix.
      if (!readFileSync(`/proc/${pid}/environ`, "latin1").split("\0").includes(needle)) continue;
      const command = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
      found.push({ pid, command });
    } catch {
      // Gone between the listing and the read, or not ours to read: neither is a leak of ours.
    }
  }
  return found;
}

interface SocketEntry {
  inode: string;
  description: string;
  listening: boolean;
  remotePort?: number;
  localPort?: number;
}

/** The sockets this process holds open, described from /proc/net. */
export function ownSockets(): SocketEntry[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (match) inodes.add(match[1]!);
    } catch {
      // The descriptor closed while we listed them.
    }
  }
  return allSockets().filter((s) => inodes.has(s.inode));
}

function allSockets(): SocketEntry[] {
  const sockets: SocketEntry[] = [];
  for (const table of ["tcp", "tcp6"]) {
    let text: string;
    try {
      text = readFileSync(`/proc/net/${table}`, "utf8");
    } catch {
      continue;
    }
    for (const line of text.trim().split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const [local, remote, state, inode] = [fields[1]!, fields[2]!, fields[3]!, fields[9]!];
      const localPort = parseInt(local.split(":")[1]!, 16);
      const remotePort = parseInt(remote.split(":")[1]!, 16);
      // 0A is LISTEN (include/net/tcp_states.h).
      const listening = state === "0A";
      sockets.push({
        inode,
        listening,
        localPort,
        remotePort,
        description: listening ? `${table} listening on port ${localPort}` : `${table} ${local}`,
      });
    }
  }
  const unix = readFileSync("/proc/net/unix", "utf8");
  for (const line of unix.trim().split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    // Flags 00010000 is __SO_ACCEPTCON: the socket listens.
    const listening = fields[3] === "00010000";
    sockets.push({
      inode: fields[6]!,
      listening,
      description: `unix socket ${fields[7] ?? "(unnamed)"}${listening ? " listening" : ""}`,
    });
  }
  return sockets;
}

/** What this file started: recorded before its first hook, compared after its last. */
export interface FileBaseline {
  mark: string;
  listening: Set<string>;
}

export function takeBaseline(): FileBaseline {
  return {
    mark: markFile(),
    listening: new Set(
      ownSockets()
        .filter((s) => s.listening)
        .map((s) => s.inode),
    ),
  };
}

export interface Leaks {
  processes: string[];
  connections: string[];
  sockets: string[];
}

// A process or a backend that is already on its way out (a pool just ended, a child just
// signalled) may need a moment to disappear; only what stays is a leak.
const SETTLE_MS = 5_000;

/**
 * Everything the file left behind: marked processes that still live, server sessions on the
 * file's databases or from this worker's own sockets, listening sockets opened since the baseline.
 * Leaked processes are killed once reported, so that they cannot disturb the files after.
 */
export async function findLeaks(
  baseline: FileBaseline,
  serverUrl: string,
  serverPort: number,
  databases: string[],
): Promise<Leaks> {
  const deadline = Date.now() + SETTLE_MS;
  for (;;) {
    const leaks = await lookForLeaks(baseline, serverUrl, serverPort, databases);
    const none = Object.values(leaks).every((list) => list.length === 0);
    if (none || Date.now() > deadline) {
      for (const { pid } of markedProcesses(baseline.mark)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
      return leaks;
    }
    await sleep(200);
  }
}

async function lookForLeaks(
  baseline: FileBaseline,
  serverUrl: string,
  serverPort: number,
  databases: string[],
): Promise<Leaks> {
  const processes = markedProcesses(baseline.mark).map((p) => `pid ${p.pid}: ${p.command}`);
  const sockets = ownSockets();
  const listening = sockets
    .filter((s) => s.listening && !baseline.listening.has(s.inode))
    .map((s) => s.description);
  // Read before our own connection opens, so that it is not counted.
  const serverPorts = sockets
    .filter((s) => !s.listening && s.remotePort === serverPort)
    .map((s) => s.localPort);
  const admin = new pg.Client({ connectionString: serverUrl, application_name: "leak-check" });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ session: string }>(
      `SELECT format('pid %s on database %s (application_name %L, from port %s, %s): %s',
                     pid, datname, application_name, client_port, state, left(query, 200)) AS session
         FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
          AND (datname = ANY($1) OR client_port = ANY($2))
        ORDER BY pid`,
      [databases, serverPorts],
    );
    return { processes, connections: rows.map((r) => r.session), sockets: listening };
  } finally {
    await admin.end();
  }
}

export function describeLeaks(leaks: Leaks): string | undefined {
  const parts: string[] = [];
  if (leaks.processes.length)
    parts.push(`processes still running (now killed):\n  ${leaks.processes.join("\n  ")}`);
  if (leaks.connections.length)
    parts.push(`connections still open to the test server:\n  ${leaks.connections.join("\n  ")}`);
  if (leaks.sockets.length)
    parts.push(`listening sockets still open in the test worker:\n  ${leaks.sockets.join("\n  ")}`);
  return parts.length ? parts.join("\n") : undefined;
}
