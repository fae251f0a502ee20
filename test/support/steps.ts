/**
 * One named step of a case that is a single scenario (say, one table changed step by step and
 * compared with its control after each): a failure names the step it happened in, so that the
 * scenario reads and fails like separate cases without depending on the order cases run in.
 */
export async function step<T>(name: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    // The same error object, its message prefixed: vitest still shows its diff and stack.
    if (error instanceof Error) error.message = `step "${name}": ${error.message}`;
    throw error;
  }
}
