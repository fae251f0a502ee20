import { describe, expect, it } from "vitest";
import { isConnectionLoss } from "../../bridge/errors.ts";

describe("isConnectionLoss", () => {
  it("knows the ways a connection dies, and nothing else", () => {
    const withCode = (code: string, message = "x") => Object.assign(new Error(message), { code });
    expect(isConnectionLoss(withCode("57P01"))).toBe(true); // admin_shutdown (fast restart)
    expect(isConnectionLoss(withCode("57P02"))).toBe(true); // crash_shutdown (immediate)
    expect(isConnectionLoss(withCode("08006"))).toBe(true);
    expect(isConnectionLoss(new Error("Connection terminated unexpectedly"))).toBe(true);
    expect(isConnectionLoss(withCode("ECONNREFUSED"))).toBe(true);
    expect(isConnectionLoss(withCode("40001"))).toBe(false); // retryable, but not by resending
    expect(isConnectionLoss(withCode("42P01", "relation does not exist"))).toBe(false);
    expect(isConnectionLoss(new Error("anything else"))).toBe(false);
    expect(isConnectionLoss(undefined)).toBe(false);
  });
});
