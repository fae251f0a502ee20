/**
 * The server's side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, without
 * channel binding: the client proves it knows the password without sending it.
 * https://www.postgresql.org/docs/current/sasl-authentication.html
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";

export const SCRAM_MECHANISM = "SCRAM-SHA-256";
const ITERATIONS = 4096;

/** The client's messages do not follow SCRAM (not a wrong password: that is a failed proof). */
export class ScramProtocolError extends Error {
  override readonly name = "ScramProtocolError";
}

const hmac = (key: Buffer, data: string | Buffer) =>
  createHmac("sha256", key).update(data).digest();
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest();

function attributes(text: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const part of text.split(",")) {
    const match = /^([A-Za-z])=(.*)$/s.exec(part);
    if (!match) throw new ScramProtocolError(`malformed SCRAM attribute ${JSON.stringify(part)}`);
    if (!found.has(match[1]!)) found.set(match[1]!, match[2]!);
  }
  return found;
}

/** One exchange: first() answers the client-first message, final() checks the proof. */
export class ScramExchange {
  private readonly salt = randomBytes(16);
  private readonly serverNonce = randomBytes(18).toString("base64");
  private clientFirstBare = "";
  private serverFirst = "";
  private nonce = "";
  private gs2Header = "";

  /** The password is the expected one; an unknown user gets a made-up one (no user oracle). */
  constructor(private readonly password: string) {}

  first(clientFirst: string): string {
    // gs2-header: "n,," (client does not do channel binding) or "y,," (it could, we do not offer it).
    const match = /^([ny]),(a=[^,]*)?,(.*)$/s.exec(clientFirst);
    if (!match) {
      throw new ScramProtocolError("SCRAM channel binding is not offered by this server");
    }
    this.gs2Header = `${match[1]},${match[2] ?? ""},`;
    this.clientFirstBare = match[3]!;
    const clientNonce = attributes(this.clientFirstBare).get("r");
    if (!clientNonce || !/^[\x21-\x2b\x2d-\x7e]+$/.test(clientNonce)) {
      throw new ScramProtocolError("the SCRAM client nonce is missing or malformed");
    }
    this.nonce = clientNonce + this.serverNonce;
    this.serverFirst = `r=${this.nonce},s=${this.salt.toString("base64")},i=${ITERATIONS}`;
    return this.serverFirst;
  }

  /** The server-final message when the proof is right, undefined when it is not. */
  final(clientFinal: string): string | undefined {
    const proofAt = clientFinal.lastIndexOf(",p=");
    if (proofAt < 0) throw new ScramProtocolError("the SCRAM client proof is missing");
    const withoutProof = clientFinal.slice(0, proofAt);
    const fields = attributes(withoutProof);
    if (fields.get("c") !== Buffer.from(this.gs2Header, "utf8").toString("base64")) {
      throw new ScramProtocolError("the SCRAM channel binding data does not match");
    }
    if (fields.get("r") !== this.nonce) {
      throw new ScramProtocolError("the SCRAM nonce does not match");
    }
    const proof = Buffer.from(clientFinal.slice(proofAt + 3), "base64");
    const salted = pbkdf2Sync(this.password, this.salt, ITERATIONS, 32, "sha256");
    const clientKey = hmac(salted, "Client Key");
    const storedKey = sha256(clientKey);
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const signature = hmac(storedKey, authMessage);
    if (proof.length !== signature.length) return undefined;
    const claimedKey = Buffer.alloc(proof.length);
    for (let i = 0; i < proof.length; i++) claimedKey[i] = proof[i]! ^ signature[i]!;
    if (!timingSafeEqual(sha256(claimedKey), storedKey)) return undefined;
    const serverSignature = hmac(hmac(salted, "Server Key"), authMessage);
    return `v=${serverSignature.toString("base64")}`;
  }
}
