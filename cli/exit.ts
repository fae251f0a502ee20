/**
 * Ends the CLI with an exit code once everything it printed has gone out. process.exit() does not
 * wait for stdout and stderr when they are pipes: what the reader has not taken yet is dropped, so
 * `pg-offload gc | tail -1` printed a line from the middle of the list. It still exits explicitly
 * (rather than letting the event loop drain): a pool's idle timer or a library's handle must not
 * keep a finished command alive.
 */
export async function exitWhenWritten(code: number): Promise<never> {
  await Promise.all([written(process.stdout), written(process.stderr)]);
  process.exit(code);
}

/** Resolves when what was written before has been handed to the OS, or the stream is gone. */
function written(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) return resolve();
    // The reader went away (EPIPE): nothing more can be delivered, so nothing to wait for.
    stream.once("error", () => resolve());
    // Writes complete in order: this one's callback runs after every earlier write's.
    stream.write("", () => resolve());
  });
}
