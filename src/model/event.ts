/**
 * The change event: one envelope for every connector, as in Debezium.
 *
 * A source turns each row change (or each row its snapshot copies) into a `ChangeEvent`; steps
 * read it and sinks write it. `op` and `source` are a public contract (the Kafka sink's
 * Debezium format and the jsonl format print them), so they are plain data: no methods, and
 * positions and times as the serializable `Position` and `Timestamp`.
 */
import type { Position } from "./position.js";
import type { Timestamp } from "./timestamp.js";
import type { Row } from "./value.js";

/** `read` is a row copied by the snapshot. */
export type Op = "insert" | "update" | "delete" | "read";

export const OPS: readonly Op[] = ["insert", "update", "delete", "read"];

export interface SourceInfo {
  readonly connector: string;
  readonly db: string;
  /** Empty for sources without schemas (MySQL): the database is the namespace there. */
  readonly schema: string;
  readonly table: string;
  readonly position: Position;
  /** The commit time of the transaction (for a snapshot read, when the snapshot began). */
  readonly ts: Timestamp;
  readonly txid?: string | undefined;
}

export interface ChangeEvent {
  readonly op: Op;
  /** null on insert and read. */
  readonly before: Row | null;
  /** null on delete. */
  readonly after: Row | null;
  /** The primary-key columns. */
  readonly key: Row;
  readonly source: SourceInfo;
}

/**
 * The qualified table name expressions see as `table`: `schema.table`, or `db.table` where
 * the source has no schemas (MySQL).
 */
export function qualifiedTableName(source: Pick<SourceInfo, "db" | "schema" | "table">): string {
  return `${source.schema || source.db}.${source.table}`;
}

const debeziumOps: Readonly<Record<Op, string>> = { insert: "c", update: "u", delete: "d", read: "r" };

/** Debezium's one-letter op code: c, u, d, r. */
export function opToDebezium(op: Op): string {
  return debeziumOps[op];
}

export function isOp(text: string): text is Op {
  return (OPS as readonly string[]).includes(text);
}
