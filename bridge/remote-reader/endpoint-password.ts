import { createHmac } from "node:crypto";

/**
 * The password a remote reader login carries: derived from the bridges' shared SQL secret and the
 * login, so that no password is stored anywhere but in the table's user mapping, and every bridge
 * of the database accepts it.
 */
export function endpointPassword(secret: Buffer, user: string): string {
  return createHmac("sha256", secret).update(user).digest("base64url");
}
