import { createHmac } from "node:crypto";

/**
 * The password of the SQL endpoint's login `user` (one per offloaded table): base64url of
 * HMAC-SHA256(secret, user). The endpoint derives it to check a login; the bridge writes it into
 * the postgres_fdw user mapping. Nothing stores it, so rotating the secret rotates every password.
 */
export function endpointPassword(secret: Buffer, user: string): string {
  return createHmac("sha256", secret).update(user, "utf8").digest("base64url");
}
