import { once } from "node:events";
import type { Server } from "node:net";

/**
 * Calls `start` (which calls server.listen) and resolves once the server listens, or rejects with
 * the error that kept it from listening (a port in use, a socket path it cannot bind). Its
 * listeners go once the outcome is known, so later errors reach the server's own.
 */
export async function listening(server: Server, start: () => void): Promise<void> {
  const settled = new AbortController();
  const { signal } = settled;
  try {
    start();
    await Promise.race([
      once(server, "listening", { signal }),
      once(server, "error", { signal }).then(([error]) => Promise.reject(error)),
    ]);
  } finally {
    settled.abort();
  }
}
