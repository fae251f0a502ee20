/**
 * Why the sandbox (the throwaway PostgreSQL of the demo, tests and benchmark) cannot start, as a
 * sentence that says what to do: the demo and the test run print it instead of a stack trace.
 */
export class SandboxError extends Error {
  override name = "SandboxError";
}
