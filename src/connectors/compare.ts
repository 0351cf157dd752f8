/**
 * Comparing a table with its copy, through the verify capability of each side's connector
 * (capabilities.ts `VerifyReader`), whatever the two engines are.
 *
 * First each column pair is given a form (`ValueForm`). Two readers of one engine compare a
 * pair *natively*: exactly, by the type's own text, when the types are the same, else as that
 * engine says (postgres/verify.ts). Readers of two engines print the canonical text of the
 * kind both agree on (src/model/canonical.ts `commonKind`). Every normalisation that is not
 * exact comes back as a note, and a pair with no exact common form is not compared and is
 * named: the table then counts as not fully verified.
 *
 * Then each side computes, in one scan, its row count and the sum of its row hashes: only
 * those cross the network, whatever the table's size. When they differ, the differing keys are
 * found without copying the tables either: both sides sum their rows per bucket of the key,
 * and only the rows of buckets that differ are fetched — as (key text, row hash) pairs — and
 * compared, up to a bound.
 */
import { commonKind, parseRowText } from "../model/canonical.js";
import type { Checksum, ColumnForm, RowQuery, VerifyColumn, VerifyReader, VerifyTable } from "./capabilities.js";

export interface TableComparison {
  readonly source: Checksum;
  /** Undefined when the target table does not exist. */
  readonly target: Checksum | undefined;
  /** Source columns the target lacks (then only counts are compared). */
  readonly missingColumns: readonly string[];
  /** How each normalised column was compared: `price: numeric(10,2) -> DECIMAL(38,2): by value: ...`. */
  readonly notes: readonly string[];
  /** Columns that could not be compared, with why. */
  readonly uncompared: readonly string[];
  readonly equal: boolean;
  /** The key columns; empty: the differing rows cannot be listed. */
  readonly key: readonly string[];
  /** At most `maxKeys` differing keys, as `id=5` texts, with what differs. */
  readonly differences: readonly KeyDifference[];
  /** More keys differ than were listed. */
  readonly moreDifferences: boolean;
}

export interface KeyDifference {
  readonly key: string;
  readonly kind: "missing in target" | "extra in target" | "differs";
}

export interface CompareOptions {
  readonly maxKeys?: number;
  /** Rows fetched per side, at most, to list differing keys. */
  readonly maxRowsFetched?: number;
}

/** Compares `sourceTable` (read by `source`) with `targetTable` (read by `target`), by the source's columns and key. */
export async function compareTables(
  source: VerifyReader,
  sourceTable: VerifyTable,
  target: VerifyReader,
  targetTable: VerifyTable | undefined,
  options: CompareOptions = {},
): Promise<TableComparison> {
  const maxKeys = options.maxKeys ?? 20;
  const columns = [...sourceTable.columns].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const empty = { notes: [], uncompared: [], key: sourceTable.key, differences: [], moreDifferences: false };
  if (targetTable === undefined) {
    return { ...empty, source: await source.summary({ table: sourceTable, columns: [], key: [] }), target: undefined, missingColumns: [], equal: false };
  }
  const missingColumns = columns.filter((column) => targetTable.column(column.name) === undefined).map((column) => column.name);
  if (missingColumns.length > 0) {
    const [s, t] = await Promise.all([source.summary({ table: sourceTable, columns: [], key: [] }), target.summary({ table: targetTable, columns: [], key: [] })]);
    return { ...empty, source: s, target: t, missingColumns, equal: false };
  }

  const sourceForms: ColumnForm[] = [];
  const targetForms: ColumnForm[] = [];
  const notes: string[] = [];
  const uncompared: string[] = [];
  for (const column of columns) {
    const copy = targetTable.column(column.name)!;
    const pair = pairForms(source, column, target, copy);
    const label = `${column.name}: ${column.type} -> ${copy.type}`;
    if ("reason" in pair) {
      uncompared.push(`${label}: ${pair.reason}`);
      continue;
    }
    if (pair.note !== undefined) notes.push(`${label}: ${pair.note}`);
    sourceForms.push({ column, form: pair.source });
    targetForms.push({ column: copy, form: pair.target });
  }
  const compared = new Set(sourceForms.map((form) => form.column.name));
  const key = sourceTable.key.every((name) => compared.has(name)) ? sourceTable.key : [];
  // The target's forms stand at the same places as the source's (its names may be spelt otherwise).
  const keyForms = (forms: readonly ColumnForm[]): ColumnForm[] => key.map((name) => forms[sourceForms.findIndex((form) => form.column.name === name)]!);
  const sourceQuery: RowQuery = { table: sourceTable, columns: sourceForms, key: keyForms(sourceForms) };
  const targetQuery: RowQuery = { table: targetTable, columns: targetForms, key: keyForms(targetForms) };

  const [s, t] = await Promise.all([source.summary(sourceQuery), target.summary(targetQuery)]);
  const equal = s.rows === t.rows && s.sum === t.sum;
  const result = { source: s, target: t, missingColumns, notes, uncompared, equal, key };
  if (equal || key.length === 0) return { ...result, differences: [], moreDifferences: false };

  // Buckets: about a thousand rows each, at least 1, at most 65536.
  const rows = s.rows > t.rows ? s.rows : t.rows;
  const buckets = Math.min(65536, Math.max(1, 2 ** Math.ceil(Math.log2(Math.max(1, Number(rows) / 1000)))));
  const [sb, tb] = await Promise.all([source.buckets(sourceQuery, buckets), target.buckets(targetQuery, buckets)]);
  const differing: number[] = [];
  let budget = options.maxRowsFetched ?? 100_000;
  let differingBuckets = 0;
  for (let bucket = 0; bucket < buckets; bucket++) {
    const a = sb.get(bucket);
    const b = tb.get(bucket);
    if (a?.rows === b?.rows && a?.sum === b?.sum) continue;
    differingBuckets++;
    const cost = Number((a?.rows ?? 0n) > (b?.rows ?? 0n) ? (a?.rows ?? 0n) : (b?.rows ?? 0n));
    if (differing.length > 0 && cost > budget) continue;
    budget -= cost;
    differing.push(bucket);
  }
  const [sr, tr] = await Promise.all([source.rows(sourceQuery, buckets, differing), target.rows(targetQuery, buckets, differing)]);
  const differences: { keyText: string; kind: KeyDifference["kind"] }[] = [];
  for (const [k, hash] of sr) {
    const other = tr.get(k);
    if (other === undefined) differences.push({ keyText: k, kind: "missing in target" });
    else if (other !== hash) differences.push({ keyText: k, kind: "differs" });
  }
  for (const k of tr.keys()) if (!sr.has(k)) differences.push({ keyText: k, kind: "extra in target" });
  const listed = differences.map((d) => ({ key: readableKey(key, d.keyText), kind: d.kind }));
  listed.sort((x, y) => x.key.localeCompare(y.key, "en", { numeric: true }));
  return {
    ...result,
    differences: listed.slice(0, maxKeys),
    moreDifferences: listed.length > maxKeys || differing.length < differingBuckets,
  };
}

type PairForms = { readonly source: ColumnForm["form"]; readonly target: ColumnForm["form"]; readonly note: string | undefined } | { readonly reason: string };

function pairForms(source: VerifyReader, column: VerifyColumn, target: VerifyReader, copy: VerifyColumn): PairForms {
  if (source.engine === target.engine) {
    const native = source.native(column, copy);
    if ("unverifiable" in native) return { reason: native.unverifiable };
    return { source: { kind: "native", other: copy }, target: { kind: "native", other: column }, note: native.note };
  }
  const common = commonKind(column.kind, copy.kind);
  switch (common.kind) {
    case "none":
      return { reason: common.reason };
    case "text":
      return { source: { kind: "text" }, target: { kind: "text" }, note: `${common.note} (${source.engine} and ${target.engine})` };
    default: {
      const reason = source.cannotPrint(column, common.kind) ?? target.cannotPrint(copy, common.kind);
      if (reason !== undefined) return { reason };
      return { source: { kind: "canonical", as: common.kind }, target: { kind: "canonical", as: common.kind }, note: common.note };
    }
  }
}

/** A key's row text → `id=5, name=a`. */
function readableKey(key: readonly string[], text: string): string {
  const values = parseRowText(text) ?? [];
  return key.map((column, i) => `${column}=${values[i] === undefined ? "?" : values[i] === null ? "null" : values[i]}`).join(", ");
}
