/**
 * PostgreSQL's wire protocol (version 3.0), the server's side: encoders of the backend messages
 * the SQL endpoint sends and a reader of the frontend messages' fields. Only text format.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */

/** A protocol violation or a message beyond the limits: the connection ends with this error. */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";

  constructor(
    message: string,
    readonly sqlState = "08P01",
  ) {
    super(message);
  }
}

function message(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, "latin1");
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

function cstring(text: string): Buffer {
  if (text.includes("\0")) throw new ProtocolError("a string to send contains a NUL byte");
  return Buffer.from(text + "\0", "utf8");
}

function int32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32BE(value);
  return buffer;
}

function int16(value: number): Buffer {
  const buffer = Buffer.alloc(2);
  buffer.writeInt16BE(value);
  return buffer;
}

export const authenticationOk = (): Buffer => message("R", int32(0));

export const authenticationSasl = (mechanisms: string[]): Buffer =>
  message("R", Buffer.concat([int32(10), ...mechanisms.map(cstring), Buffer.from([0])]));

export const authenticationSaslContinue = (data: string): Buffer =>
  message("R", Buffer.concat([int32(11), Buffer.from(data, "utf8")]));

export const authenticationSaslFinal = (data: string): Buffer =>
  message("R", Buffer.concat([int32(12), Buffer.from(data, "utf8")]));

export const parameterStatus = (name: string, value: string): Buffer =>
  message("S", Buffer.concat([cstring(name), cstring(value)]));

export const backendKeyData = (pid: number, secret: number): Buffer =>
  message("K", Buffer.concat([int32(pid), int32(secret)]));

/** The protocol version the client asked for is newer than 3.0, or it sent _pq_ options. */
export const negotiateProtocolVersion = (minor: number, unrecognized: string[]): Buffer =>
  message(
    "v",
    Buffer.concat([int32(minor), int32(unrecognized.length), ...unrecognized.map(cstring)]),
  );

export type TransactionStatus = "I" | "T" | "E";

export const readyForQuery = (status: TransactionStatus): Buffer =>
  message("Z", Buffer.from(status, "latin1"));

export interface ErrorFields {
  severity: "ERROR" | "FATAL";
  sqlState: string;
  message: string;
  detail?: string;
  hint?: string;
}

export function errorResponse(fields: ErrorFields): Buffer {
  const parts: Buffer[] = [];
  const add = (code: string, value: string) => {
    parts.push(Buffer.from(code, "latin1"), cstring(value.replaceAll("\0", "")));
  };
  add("S", fields.severity);
  add("V", fields.severity);
  add("C", fields.sqlState);
  add("M", fields.message);
  if (fields.detail !== undefined) add("D", fields.detail);
  if (fields.hint !== undefined) add("H", fields.hint);
  parts.push(Buffer.from([0]));
  return message("E", Buffer.concat(parts));
}

export interface ColumnDescription {
  name: string;
  typeOid: number;
}

export function rowDescription(columns: ColumnDescription[]): Buffer {
  const parts: Buffer[] = [int16(columns.length)];
  for (const column of columns) {
    const fixed = Buffer.alloc(18);
    fixed.writeInt32BE(0, 0); // table OID
    fixed.writeInt16BE(0, 4); // column number
    fixed.writeInt32BE(column.typeOid, 6);
    fixed.writeInt16BE(-1, 10); // type size: not known here
    fixed.writeInt32BE(-1, 12); // type modifier
    fixed.writeInt16BE(0, 16); // text format
    parts.push(cstring(column.name), fixed);
  }
  return message("T", Buffer.concat(parts));
}

export function dataRow(values: ReadonlyArray<string | null>): Buffer {
  const parts: Buffer[] = [int16(values.length)];
  for (const value of values) {
    if (value === null) {
      parts.push(int32(-1));
    } else {
      const bytes = Buffer.from(value, "utf8");
      parts.push(int32(bytes.length), bytes);
    }
  }
  return message("D", Buffer.concat(parts));
}

export const commandComplete = (tag: string): Buffer => message("C", cstring(tag));
export const emptyQueryResponse = (): Buffer => message("I", Buffer.alloc(0));
export const parseComplete = (): Buffer => message("1", Buffer.alloc(0));
export const bindComplete = (): Buffer => message("2", Buffer.alloc(0));
export const closeComplete = (): Buffer => message("3", Buffer.alloc(0));
export const noData = (): Buffer => message("n", Buffer.alloc(0));
export const portalSuspended = (): Buffer => message("s", Buffer.alloc(0));

export const parameterDescription = (typeOids: number[]): Buffer =>
  message("t", Buffer.concat([int16(typeOids.length), ...typeOids.map(int32)]));

/** Reads the fields of one frontend message's body, refusing to read past its end. */
export class FieldReader {
  private offset = 0;

  constructor(private readonly body: Buffer) {}

  private need(bytes: number): void {
    if (this.offset + bytes > this.body.length) {
      throw new ProtocolError("a message ends before its fields do");
    }
  }

  int16(): number {
    this.need(2);
    const value = this.body.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  int32(): number {
    this.need(4);
    const value = this.body.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  byte(): string {
    this.need(1);
    return String.fromCharCode(this.body[this.offset++]!);
  }

  bytes(length: number): Buffer {
    if (length < 0) throw new ProtocolError("a negative length in a message");
    this.need(length);
    const value = this.body.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  cstring(): string {
    const end = this.body.indexOf(0, this.offset);
    if (end < 0) throw new ProtocolError("a string in a message lacks its terminating NUL");
    const value = this.body.toString("utf8", this.offset, end);
    this.offset = end + 1;
    return value;
  }

  rest(): Buffer {
    const value = this.body.subarray(this.offset);
    this.offset = this.body.length;
    return value;
  }
}
