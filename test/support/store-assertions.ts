import { expect } from "vitest";
import { StoreError } from "../../storage/store-errors.ts";

/** Awaits a store call that must fail, and returns its StoreError. */
export async function storeFailure(promise: Promise<unknown>): Promise<StoreError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StoreError);
  return error as StoreError;
}
