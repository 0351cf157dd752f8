/**
 * Source positions: where in its change stream a source is.
 *
 * A position is opaque to everything but its connector, and it must survive a checkpoint file,
 * a database row and a JSON line, so it is a pair of strings: a `kind` naming the scheme and a
 * `token` the connector designed. The checkpoint coordinator still has to order positions (to
 * know which acknowledgement is the newest), so each scheme's order is defined here, once:
 *
 *   pg-lsn        PostgreSQL WAL location `X/Y` (two hex halves of a 64-bit number), numeric
 *   mysql-binlog  `FILE.SEQ:OFFSET` (`mysql-bin.000003:4567`): by file sequence, then offset;
 *                 anything after the offset (a GTID set, say, after `;`) breaks ties as text
 *   seq           a decimal integer (datagen, jsonl line numbers, Kafka offsets), numeric
 *   other kinds   by the token's code points, so a connector can design sortable text
 */
import { compareStrings } from "./value.js";

export interface Position {
  readonly kind: string;
  readonly token: string;
}

export function position(kind: string, token: string): Position {
  return { kind, token };
}

export function pgLsnPosition(lsn: string | bigint): Position {
  return { kind: "pg-lsn", token: typeof lsn === "bigint" ? bigIntToLsn(lsn) : bigIntToLsn(lsnToBigInt(lsn)) };
}

export function binlogPosition(file: string, offset: number | bigint): Position {
  return { kind: "mysql-binlog", token: `${file}:${offset}` };
}

export function seqPosition(seq: number | bigint): Position {
  return { kind: "seq", token: BigInt(seq).toString() };
}

const lsnPattern = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** `0/16B3748` → 23803720n. */
export function lsnToBigInt(lsn: string): bigint {
  const m = lsnPattern.exec(lsn);
  if (m === null) throw new SyntaxError(`not a PostgreSQL LSN: ${JSON.stringify(lsn)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** 23803720n → `0/16B3748`, as PostgreSQL prints it (upper-case hex, no leading zeros). */
export function bigIntToLsn(value: bigint): string {
  if (value < 0n || value > 0xffffffffffffffffn) throw new RangeError(`LSN out of range: ${value}`);
  return `${(value >> 32n).toString(16).toUpperCase()}/${(value & 0xffffffffn).toString(16).toUpperCase()}`;
}

const binlogPattern = /^(.*?)\.(\d+):(\d+)(.*)$/s;

/** A binlog token's parts: `mysql-bin.000003:4567` → base `mysql-bin`, sequence 3, offset 4567. */
export function parseBinlogToken(token: string): { base: string; sequence: bigint; offset: bigint; rest: string } {
  const m = binlogPattern.exec(token);
  if (m === null) throw new SyntaxError(`not a binlog position (FILE.SEQ:OFFSET): ${JSON.stringify(token)}`);
  return { base: m[1]!, sequence: BigInt(m[2]!), offset: BigInt(m[3]!), rest: m[4]! };
}

const seqPattern = /^-?\d+$/;

function compareBigInts(a: bigint, b: bigint): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Orders two positions of the same kind (negative, zero, positive). Positions of different
 * kinds come from different sources and have no order: comparing them is a bug, so it throws.
 */
export function comparePositions(a: Position, b: Position): -1 | 0 | 1 {
  if (a.kind !== b.kind) {
    throw new TypeError(`cannot order a ${a.kind} position against a ${b.kind} position`);
  }
  switch (a.kind) {
    case "pg-lsn":
      return compareBigInts(lsnToBigInt(a.token), lsnToBigInt(b.token));
    case "mysql-binlog": {
      const x = parseBinlogToken(a.token);
      const y = parseBinlogToken(b.token);
      return (
        compareBigInts(x.sequence, y.sequence) ||
        compareBigInts(x.offset, y.offset) ||
        compareStrings(x.rest, y.rest)
      );
    }
    case "seq": {
      for (const token of [a.token, b.token]) {
        if (!seqPattern.test(token)) throw new SyntaxError(`not a sequence position: ${JSON.stringify(token)}`);
      }
      return compareBigInts(BigInt(a.token), BigInt(b.token));
    }
    default:
      return compareStrings(a.token, b.token);
  }
}

export function positionsEqual(a: Position, b: Position): boolean {
  return a.kind === b.kind && a.token === b.token;
}

/** The later of two positions of the same kind. */
export function maxPosition(a: Position, b: Position): Position {
  return comparePositions(a, b) >= 0 ? a : b;
}

/**
 * Whether a checkpoint at `checkpoint` covers an event at `event`: a source resumed from that
 * checkpoint would not send the event again. Each scheme places events and checkpoints in its
 * own way, so this is defined here beside their order:
 *
 *   pg-lsn   an event carries its transaction's commit LSN (where the commit record starts) and
 *            a checkpoint is a commit's end LSN, so an event is covered when it is before the
 *            checkpoint (the next transaction's commit may start exactly at it);
 *   others   a checkpoint is the position of the last event it covers: at or before it.
 *
 * A sink whose own position is ahead of its source's (it kept up while another sink lagged)
 * skips the covered events after a restart; all events of a transaction share one coverage, so
 * a transaction is skipped or applied whole.
 */
export function coveredBy(event: Position, checkpoint: Position): boolean {
  if (event.kind !== checkpoint.kind) return false;
  const order = comparePositions(event, checkpoint);
  return event.kind === "pg-lsn" ? order < 0 : order <= 0;
}
