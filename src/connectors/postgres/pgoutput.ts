/**
 * The wire formats of a logical replication stream: the CopyBoth frames the walsender sends
 * (XLogData `w`, primary keepalive `k`), the standby status update we answer with (`r`), and
 * the messages of the built-in `pgoutput` plugin, protocol version 1 (PostgreSQL's
 * "Logical Replication Message Formats").
 *
 * Parsing is pure and synchronous: a frame is decoded the moment it arrives, and nothing of it
 * is kept after (a message's content is copied out). Column values stay the text PostgreSQL
 * printed (pgoutput sends text unless asked for binary); turning them into values is
 * `decode.ts`'s job, once the relation's types are known. A value of `LARGE_VALUE_BYTES` or
 * more stays bytes, a view of the frame: a 50 MB bytea arrives as 100 MB of hex, which is
 * decoded into its 50 MB straight from the frame rather than through a 100 MB string.
 * LSNs and times are read as bigints: an LSN is a 64-bit WAL position, a time is microseconds
 * since 2000-01-01 (PostgreSQL's epoch).
 */
import { DtsError } from "../../diagnostics/errors.js";

/**
 * A column value in a tuple: its text (as UTF-8 bytes when large: a view of the frame, to be
 * read before the frame is let go), SQL NULL, or an unchanged TOASTed value the server did not send.
 */
export type TupleValue = string | Buffer | null | typeof UNCHANGED_TOAST;

/** Values this long stay bytes (see TupleValue). */
export const LARGE_VALUE_BYTES = 1 << 20;
export const UNCHANGED_TOAST: unique symbol = Symbol("unchanged TOAST value");

export interface RelationColumn {
  readonly name: string;
  readonly typeOid: number;
  readonly typeModifier: number;
  /** Part of the replica identity (the key the old tuple carries). */
  readonly isKey: boolean;
}

/** `d` default (primary key), `n` nothing, `f` full, `i` index. */
export type ReplicaIdentityCode = "d" | "n" | "f" | "i";

export type PgOutputMessage =
  | { readonly tag: "begin"; readonly finalLsn: bigint; readonly commitTime: bigint; readonly xid: number }
  | { readonly tag: "commit"; readonly commitLsn: bigint; readonly endLsn: bigint; readonly commitTime: bigint }
  | { readonly tag: "origin"; readonly originLsn: bigint; readonly name: string }
  | {
      readonly tag: "relation";
      readonly relationId: number;
      readonly schema: string;
      readonly table: string;
      readonly replicaIdentity: ReplicaIdentityCode;
      readonly columns: readonly RelationColumn[];
    }
  | { readonly tag: "type"; readonly typeOid: number; readonly schema: string; readonly name: string }
  | { readonly tag: "insert"; readonly relationId: number; readonly tuple: readonly TupleValue[] }
  | {
      readonly tag: "update";
      readonly relationId: number;
      /** `K`: the old key (the key changed, replica identity default/index); `O`: the old row (FULL). */
      readonly oldKind: "K" | "O" | null;
      readonly old: readonly TupleValue[] | null;
      readonly tuple: readonly TupleValue[];
    }
  | { readonly tag: "delete"; readonly relationId: number; readonly oldKind: "K" | "O"; readonly old: readonly TupleValue[] }
  | { readonly tag: "truncate"; readonly relationIds: readonly number[]; readonly cascade: boolean; readonly restartIdentity: boolean }
  | {
      readonly tag: "message";
      readonly transactional: boolean;
      readonly lsn: bigint;
      readonly prefix: string;
      readonly content: Buffer;
    };

export class PgOutputError extends DtsError {
  constructor(message: string) {
    super("DTS7106", `pgoutput: ${message}`);
    this.name = "PgOutputError";
  }
}

/** A cursor over one message. */
class Reader {
  offset: number;
  constructor(
    private readonly buffer: Buffer,
    start: number,
  ) {
    this.offset = start;
  }

  byte(): number {
    this.need(1);
    return this.buffer[this.offset++]!;
  }

  int16(): number {
    this.need(2);
    const value = this.buffer.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  int32(): number {
    this.need(4);
    const value = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  uint32(): number {
    this.need(4);
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  int64(): bigint {
    this.need(8);
    const value = this.buffer.readBigInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  uint64(): bigint {
    this.need(8);
    const value = this.buffer.readBigUInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  /** A NUL-terminated string. */
  cstring(): string {
    const end = this.buffer.indexOf(0, this.offset);
    if (end < 0) throw new PgOutputError("unterminated string");
    const text = this.buffer.toString("utf8", this.offset, end);
    this.offset = end + 1;
    return text;
  }

  text(length: number): string {
    this.need(length);
    const text = this.buffer.toString("utf8", this.offset, this.offset + length);
    this.offset += length;
    return text;
  }

  /** A view of the next `length` bytes: valid only while the frame is. */
  view(length: number): Buffer {
    this.need(length);
    const view = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return view;
  }

  bytes(length: number): Buffer {
    this.need(length);
    // A copy: a view would keep the whole frame alive for as long as the bytes are.
    const bytes = Buffer.from(this.buffer.subarray(this.offset, this.offset + length));
    this.offset += length;
    return bytes;
  }

  private need(n: number): void {
    if (this.offset + n > this.buffer.length) throw new PgOutputError("message ends early");
  }
}

/** Decodes the pgoutput message that starts at `start` in `buffer`. */
export function parsePgOutput(buffer: Buffer, start = 0): PgOutputMessage {
  const reader = new Reader(buffer, start);
  const tag = reader.byte();
  switch (tag) {
    case 0x42 /* B */:
      return { tag: "begin", finalLsn: reader.uint64(), commitTime: reader.int64(), xid: reader.uint32() };
    case 0x43 /* C */: {
      reader.byte(); // flags, unused
      return { tag: "commit", commitLsn: reader.uint64(), endLsn: reader.uint64(), commitTime: reader.int64() };
    }
    case 0x4f /* O */:
      return { tag: "origin", originLsn: reader.uint64(), name: reader.cstring() };
    case 0x52 /* R */: {
      const relationId = reader.uint32();
      const schema = reader.cstring();
      const table = reader.cstring();
      const replicaIdentity = String.fromCharCode(reader.byte()) as ReplicaIdentityCode;
      const count = reader.int16();
      const columns: RelationColumn[] = [];
      for (let i = 0; i < count; i++) {
        const flags = reader.byte();
        const name = reader.cstring();
        const typeOid = reader.uint32();
        const typeModifier = reader.int32();
        columns.push({ name, typeOid, typeModifier, isKey: (flags & 1) === 1 });
      }
      // An empty namespace means pg_catalog (pgoutput's convention).
      return { tag: "relation", relationId, schema: schema === "" ? "pg_catalog" : schema, table, replicaIdentity, columns };
    }
    case 0x59 /* Y */: {
      const typeOid = reader.uint32();
      const schema = reader.cstring();
      return { tag: "type", typeOid, schema: schema === "" ? "pg_catalog" : schema, name: reader.cstring() };
    }
    case 0x49 /* I */: {
      const relationId = reader.uint32();
      expectTag(reader.byte(), 0x4e, "insert");
      return { tag: "insert", relationId, tuple: readTuple(reader) };
    }
    case 0x55 /* U */: {
      const relationId = reader.uint32();
      let marker = reader.byte();
      let oldKind: "K" | "O" | null = null;
      let old: TupleValue[] | null = null;
      if (marker === 0x4b /* K */ || marker === 0x4f /* O */) {
        oldKind = marker === 0x4b ? "K" : "O";
        old = readTuple(reader);
        marker = reader.byte();
      }
      expectTag(marker, 0x4e, "update");
      return { tag: "update", relationId, oldKind, old, tuple: readTuple(reader) };
    }
    case 0x44 /* D */: {
      const relationId = reader.uint32();
      const marker = reader.byte();
      if (marker !== 0x4b && marker !== 0x4f) throw new PgOutputError(`delete: expected K or O, got 0x${marker.toString(16)}`);
      return { tag: "delete", relationId, oldKind: marker === 0x4b ? "K" : "O", old: readTuple(reader) };
    }
    case 0x54 /* T */: {
      const count = reader.uint32();
      const options = reader.byte();
      const relationIds: number[] = [];
      for (let i = 0; i < count; i++) relationIds.push(reader.uint32());
      return { tag: "truncate", relationIds, cascade: (options & 1) === 1, restartIdentity: (options & 2) === 2 };
    }
    case 0x4d /* M */: {
      const flags = reader.byte();
      const lsn = reader.uint64();
      const prefix = reader.cstring();
      const length = reader.uint32();
      return { tag: "message", transactional: (flags & 1) === 1, lsn, prefix, content: reader.bytes(length) };
    }
    default:
      throw new PgOutputError(`unknown message type ${JSON.stringify(String.fromCharCode(tag))} (0x${tag.toString(16)})`);
  }
}

function expectTag(actual: number, expected: number, where: string): void {
  if (actual !== expected) {
    throw new PgOutputError(`${where}: expected ${String.fromCharCode(expected)}, got 0x${actual.toString(16)}`);
  }
}

function readTuple(reader: Reader): TupleValue[] {
  const count = reader.int16();
  const values: TupleValue[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const kind = reader.byte();
    switch (kind) {
      case 0x74 /* t */: {
        const length = reader.uint32();
        values[i] = length >= LARGE_VALUE_BYTES ? reader.view(length) : reader.text(length);
        break;
      }
      case 0x6e /* n */:
        values[i] = null;
        break;
      case 0x75 /* u */:
        values[i] = UNCHANGED_TOAST;
        break;
      case 0x62 /* b */:
        // Only with the `binary` option, which this source never asks for.
        throw new PgOutputError("binary tuple data is not supported");
      default:
        throw new PgOutputError(`unknown tuple data kind 0x${kind.toString(16)}`);
    }
  }
  return values;
}

// ---------------------------------------------------------------- CopyBoth frames

/** An XLogData frame: `dataStart`, `walEnd`, then the plugin's message at `payloadOffset`. */
export interface XLogDataHeader {
  readonly dataStart: bigint;
  readonly walEnd: bigint;
  readonly payloadOffset: number;
}

export const XLOG_DATA = 0x77; // w
export const PRIMARY_KEEPALIVE = 0x6b; // k

export function parseXLogData(frame: Buffer): XLogDataHeader {
  if (frame.length < 25) throw new PgOutputError("XLogData frame too short");
  return { dataStart: frame.readBigUInt64BE(1), walEnd: frame.readBigUInt64BE(9), payloadOffset: 25 };
}

export interface PrimaryKeepalive {
  /** The server's WAL position as the walsender knows it (for a logical slot, how far it has decoded). */
  readonly walEnd: bigint;
  readonly replyRequested: boolean;
}

export function parseKeepalive(frame: Buffer): PrimaryKeepalive {
  if (frame.length < 18) throw new PgOutputError("keepalive frame too short");
  return { walEnd: frame.readBigUInt64BE(1), replyRequested: frame[17] === 1 };
}

/** Microseconds between 1970-01-01 and 2000-01-01, PostgreSQL's epoch. */
export const PG_EPOCH_OFFSET_MICROS = 946_684_800_000_000n;

/**
 * A standby status update: `written` (received), `flushed` and `applied` positions. For a
 * logical slot the server moves `confirmed_flush_lsn` to `flushed`, which is why only the
 * position every sink made durable may go there.
 */
export function standbyStatusUpdate(written: bigint, flushed: bigint, applied: bigint, replyRequested: boolean, nowMicros: bigint): Buffer {
  const frame = Buffer.allocUnsafe(34);
  frame[0] = 0x72; // r
  frame.writeBigUInt64BE(written, 1);
  frame.writeBigUInt64BE(flushed, 9);
  frame.writeBigUInt64BE(applied, 17);
  frame.writeBigInt64BE(nowMicros - PG_EPOCH_OFFSET_MICROS, 25);
  frame[33] = replyRequested ? 1 : 0;
  return frame;
}
