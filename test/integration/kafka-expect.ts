/**
 * What a Kafka topic must hold after changes made in PostgreSQL, worked out from the rows
 * themselves: each statement runs with `RETURNING` a projection that prints the row as the
 * kafka sink must (exact numerics, timestamps in UTC with microseconds, bytes as base64), and
 * a model of the table keeps every row as last seen, so that an update's `before` and a
 * delete's row are known. From that, `expectedMessages` lists, per key, the messages the sink
 * must have published in that key's order: Debezium envelopes (op, before, after) and
 * tombstones, or plain rows.
 *
 * Values are compared through dts's exact JSON reader and canonical JSON, so 1.50 is not 1.5
 * and 2^53+1 is not 2^53.
 */
import type pg from "pg";
import { canonicalJson, decodeJson } from "../../src/model/json.js";
import { isRecord, type Row, type Value } from "../../src/model/value.js";

export interface ExpectedChange {
  readonly op: "r" | "c" | "u" | "d";
  readonly key: string;
  readonly before: Row | null;
  readonly after: Row | null;
}

export interface TableModel {
  readonly table: string;
  /** Whether `before` is the whole old row (REPLICA IDENTITY FULL) or only its key. */
  readonly fullIdentity: boolean;
  /** Columns a change leaves out of `after` when the statement did not set them (TOASTed). */
  readonly toasted: readonly string[];
  /** A SQL expression printing a row as JSON text, the way the envelope must hold it. */
  readonly projection: string;
  readonly rows: Map<number, Row>;
  /** Changes per key, in order. */
  readonly changes: Map<string, ExpectedChange[]>;
}

export function tableModel(table: string, projection: string, options: { fullIdentity: boolean; toasted?: readonly string[] }): TableModel {
  return { table, fullIdentity: options.fullIdentity, toasted: options.toasted ?? [], projection, rows: new Map(), changes: new Map() };
}

const keyOf = (id: number): string => `{"id":${id}}`;

function record(model: TableModel, change: ExpectedChange): void {
  let list = model.changes.get(change.key);
  if (list === undefined) model.changes.set(change.key, (list = []));
  list.push(change);
}

function without(row: Row, columns: readonly string[]): Row {
  const out: Row = {};
  for (const [k, v] of Object.entries(row)) if (!columns.includes(k)) out[k] = v;
  return out;
}

function onlyKey(row: Row): Row {
  return { id: row["id"]! };
}

async function returning(client: pg.Client, model: TableModel, sql: string): Promise<Row[]> {
  const result = await client.query<{ j: string }>(`${sql} RETURNING ${model.projection} AS j`);
  return result.rows.map((r) => decodeJson(r.j) as Row);
}

/** Rows already in the table when the snapshot reads it. */
export async function snapshotRows(client: pg.Client, model: TableModel): Promise<void> {
  const result = await client.query<{ j: string }>(`SELECT ${model.projection} AS j FROM ${model.table}`);
  for (const { j } of result.rows) {
    const row = decodeJson(j) as Row;
    const id = Number(row["id"]);
    model.rows.set(id, row);
    record(model, { op: "r", key: keyOf(id), before: null, after: row });
  }
}

export async function insert(client: pg.Client, model: TableModel, sql: string): Promise<number> {
  const rows = await returning(client, model, sql);
  for (const row of rows) {
    const id = Number(row["id"]);
    model.rows.set(id, row);
    record(model, { op: "c", key: keyOf(id), before: null, after: row });
  }
  return rows.length;
}

/**
 * An UPDATE whose WHERE picks rows by id; `sets` names the columns it assigns (the rest keep
 * their values, and a TOASTed one among them is absent from `after`). `movedFrom` maps each
 * new id to its old one when the statement changes ids.
 */
export async function update(client: pg.Client, model: TableModel, sql: string, sets: readonly string[], movedFrom?: (newId: number) => number): Promise<number> {
  const rows = await returning(client, model, sql);
  const absent = model.toasted.filter((c) => !sets.includes(c));
  for (const row of rows) {
    const id = Number(row["id"]);
    const oldId = movedFrom?.(id) ?? id;
    const old = model.rows.get(oldId);
    if (old === undefined) throw new Error(`model of ${model.table}: no row ${oldId}`);
    const after = without(row, absent);
    if (oldId !== id) {
      model.rows.delete(oldId);
      const before = model.fullIdentity ? old : onlyKey(old);
      record(model, { op: "d", key: keyOf(oldId), before, after: null });
      record(model, { op: "c", key: keyOf(id), before: null, after });
    } else {
      record(model, { op: "u", key: keyOf(id), before: model.fullIdentity ? old : null, after });
    }
    model.rows.set(id, row);
  }
  return rows.length;
}

export async function remove(client: pg.Client, model: TableModel, sql: string): Promise<number> {
  const rows = await returning(client, model, sql);
  for (const row of rows) {
    const id = Number(row["id"]);
    const old = model.rows.get(id)!;
    model.rows.delete(id);
    record(model, { op: "d", key: keyOf(id), before: model.fullIdentity ? old : onlyKey(old), after: null });
  }
  return rows.length;
}

export interface Published {
  readonly key: string | null;
  readonly value: string | null;
}

/** The messages one key must have, in order: envelopes and tombstones, or rows and tombstones. */
export function expectedMessages(changes: readonly ExpectedChange[], format: "debezium" | "json"): string[] {
  const out: string[] = [];
  for (const change of changes) {
    if (format === "json") {
      out.push(change.op === "d" ? "tombstone" : canonical(change.after));
      continue;
    }
    out.push(canonical({ op: change.op, before: change.before, after: change.after }));
    if (change.op === "d") out.push("tombstone");
  }
  return out;
}

/** A published message in the form `expectedMessages` lists, keeping only what it compares. */
export function publishedForm(message: Published, format: "debezium" | "json"): string {
  if (message.value === null) return "tombstone";
  const value = decodeJson(message.value);
  if (format === "json") return canonical(value);
  if (!isRecord(value)) return `not an envelope: ${message.value.slice(0, 200)}`;
  return canonical({ op: value["op"] ?? null, before: value["before"] ?? null, after: value["after"] ?? null });
}

export function canonical(value: Value): string {
  return canonicalJson(value);
}
