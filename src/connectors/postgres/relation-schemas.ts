/**
 * Schema changes of captured tables, as the change stream shows them. pgoutput sends a Relation
 * message (the table's name and its columns: name, type OID, type modifier) before the first
 * change of a table in a session and again after anything invalidated it, ALTER TABLE included;
 * each is compared with what the stream knew of the table (by OID, so a renamed table is the same
 * table), and a difference becomes a `SchemaChange`: columns added, dropped, or of another type
 * (`format_type` of the OID and modifier, asked of the source's SQL connection and cached), or
 * the table renamed. pgoutput sends only the new column list, so a renamed column is a drop and
 * an add.
 *
 * The first Relation of a table in a session is compared with the table's description taken at
 * start, but only when it belongs to a transaction that committed after that description
 * (`describedAt`, the WAL position read just after it): the table was then at least as new as
 * described, and any difference happened since. A stream resumed from a checkpoint first
 * replays older transactions, whose Relation may be older than the description — there a
 * difference lies *after* the message, and is reported by the Relation that follows it; the first
 * one is only taken as what the table was. (What changed while the pipeline was stopped, before
 * the first change after its checkpoint, is seen by no Relation: a sink adds a column when the
 * first row needing it arrives.)
 *
 * The new schema's nullability and primary key, and what existing rows hold in an added column,
 * come from the catalog as it is when the message is decoded — the Relation carries none of
 * them. A column added with a constant DEFAULT gives the rows it finds that value without
 * writing them (the server keeps it as `attmissingval`); one with any other DEFAULT (volatile,
 * or set after the column was added, or lost to a table rewrite since: the catalog cannot tell
 * them apart) is `computed`: the stream cannot say what those rows hold.
 */
import type { ColumnChange, Logger, SchemaChange, TableSchema } from "../../runtime/contracts.js";
import type { PgOutputMessage } from "./pgoutput.js";
import type { TableDescription } from "./tables.js";

type RelationMessage = Extract<PgOutputMessage, { tag: "relation" }>;
type Query = (sql: string, params?: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>;

interface ColumnState {
  readonly name: string;
  readonly typeOid: number;
  readonly typeModifier: number;
}

/** What the stream knows of one captured table. */
interface TableState {
  readonly qualifiedName: string;
  readonly columns: readonly ColumnState[];
  readonly primaryKey: readonly string[];
  /** From the description or the last change reported: columns not known here count as nullable. */
  readonly nullable: ReadonlyMap<string, boolean>;
}

export interface RelationSchemasOptions {
  /** The captured tables as described at start. */
  readonly tables: Iterable<TableDescription>;
  /** The WAL position read just after the description: transactions committed at or after it are newer. */
  readonly describedAt: bigint;
  readonly catalog: Query;
  readonly log: Logger;
}

export class RelationSchemas {
  /** From the description, by OID and by name. */
  private readonly described = new Map<number, TableState>();
  private readonly describedByName = new Map<string, TableState>();
  /** From a Relation message of this session, by OID. */
  private readonly seen = new Map<number, TableState>();
  /** `format_type` texts by `oid:modifier`. */
  private readonly typeNames = new Map<string, string>();

  constructor(private readonly options: RelationSchemasOptions) {
    for (const table of options.tables) {
      const columns = table.columns.filter((column) => !column.generated);
      const state: TableState = {
        qualifiedName: table.qualifiedName,
        columns: columns.map((column) => ({ name: column.name, typeOid: column.typeOid, typeModifier: column.typeModifier })),
        primaryKey: table.primaryKey,
        nullable: new Map(columns.map((column) => [column.name, column.nullable])),
      };
      this.described.set(table.oid, state);
      this.describedByName.set(table.qualifiedName, state);
      for (const column of columns) this.typeNames.set(typeKey(column.typeOid, column.typeModifier), column.type);
    }
  }

  /** Whether the relation is a captured table: one described at start (by OID, so also after a rename), or by its name. */
  captured(relationId: number, qualifiedName: string): boolean {
    return this.described.has(relationId) || this.describedByName.has(qualifiedName);
  }

  /** The table's primary key as last known; empty when unknown. */
  primaryKey(relationId: number, qualifiedName: string): readonly string[] {
    return (this.seen.get(relationId) ?? this.described.get(relationId) ?? this.describedByName.get(qualifiedName))?.primaryKey ?? [];
  }

  /**
   * Takes a Relation message of a captured table in a transaction committing at `commitLsn`
   * (null outside one; `replayed` when the stream skips it, applied before the checkpoint).
   * Undefined when there is nothing to report; otherwise the change, once looked up.
   */
  observe(message: RelationMessage, at: { readonly commitLsn: bigint | null; readonly replayed: boolean }): Promise<SchemaChange> | undefined {
    const qualifiedName = `${message.schema}.${message.table}`;
    const first = !this.seen.has(message.relationId);
    const previous = this.seen.get(message.relationId) ?? this.described.get(message.relationId) ?? this.describedByName.get(qualifiedName);
    const columns = message.columns.map((column) => ({ name: column.name, typeOid: column.typeOid, typeModifier: column.typeModifier }));
    const next: TableState = {
      qualifiedName,
      columns,
      primaryKey: previous?.primaryKey.filter((name) => columns.some((c) => c.name === name)) ?? [],
      nullable: previous?.nullable ?? new Map(),
    };
    this.seen.set(message.relationId, next);
    if (previous === undefined || !differs(previous, next)) return undefined;
    if (at.replayed || (first && (at.commitLsn === null || at.commitLsn < this.options.describedAt))) {
      this.options.log.debug("a replayed Relation message differs from the table's description; taken as the table's definition at that point", { table: qualifiedName });
      return undefined;
    }
    return this.describeChange(message.relationId, previous, next);
  }

  private async describeChange(relationId: number, previous: TableState, next: TableState): Promise<SchemaChange> {
    await this.loadTypeNames([...previous.columns, ...next.columns]);
    const catalog = await this.readCatalog(relationId);
    const typeOf = (column: ColumnState): string => this.typeNames.get(typeKey(column.typeOid, column.typeModifier))!;
    const before = new Map(previous.columns.map((column) => [column.name, column]));
    const after = new Set(next.columns.map((column) => column.name));
    const changes: ColumnChange[] = [];
    for (const column of next.columns) {
      const old = before.get(column.name);
      if (old === undefined) {
        const existing = catalog.columns.get(column.name)?.existing;
        changes.push({ kind: "added", column: column.name, type: typeOf(column), ...(existing !== undefined ? { existing } : {}) });
      } else if (old.typeOid !== column.typeOid || old.typeModifier !== column.typeModifier) {
        changes.push({ kind: "retyped", column: column.name, from: typeOf(old), to: typeOf(column) });
      }
    }
    for (const column of previous.columns) if (!after.has(column.name)) changes.push({ kind: "dropped", column: column.name, type: typeOf(column) });
    const nullable = new Map(next.columns.map((column) => [column.name, catalog.columns.get(column.name)?.nullable ?? next.nullable.get(column.name) ?? true]));
    const primaryKey = catalog.primaryKey.length > 0 && catalog.primaryKey.every((name) => after.has(name)) ? catalog.primaryKey : next.primaryKey;
    const state: TableState = { ...next, primaryKey, nullable };
    this.seen.set(relationId, state);
    const schema: TableSchema = {
      dialect: "postgres",
      columns: next.columns.map((column) => ({ name: column.name, type: typeOf(column), nullable: nullable.get(column.name)! })),
      primaryKey,
    };
    const change: SchemaChange = {
      table: next.qualifiedName,
      schema,
      columns: changes,
      ...(previous.qualifiedName !== next.qualifiedName ? { renamedFrom: previous.qualifiedName } : {}),
    };
    this.report(change);
    return change;
  }

  /** Said once per change, with exactly what changed. */
  private report(change: SchemaChange): void {
    const listed = (kind: ColumnChange["kind"]): string[] =>
      change.columns.flatMap((c) => (c.kind !== kind ? [] : c.kind === "added" || c.kind === "dropped" ? [`${c.column} ${c.type}`] : c.kind === "retyped" ? [`${c.column} ${c.from} -> ${c.to}`] : []));
    const fields: Record<string, unknown> = { table: change.table };
    if (change.renamedFrom !== undefined) fields.renamed_from = change.renamedFrom;
    for (const [kind, name] of [["added", "added"], ["dropped", "dropped"], ["retyped", "type_changed"]] as const) {
      const columns = listed(kind);
      if (columns.length > 0) fields[name] = columns.join(", ");
    }
    const dropped = change.columns.some((c) => c.kind === "dropped");
    if (dropped && change.columns.some((c) => c.kind === "added")) fields.note = "a renamed column shows as dropped and added: pgoutput sends only the new column list";
    const message = change.renamedFrom !== undefined ? "a captured table was renamed" : "a captured table's columns changed";
    if (dropped || change.renamedFrom !== undefined) this.options.log.warn(message, fields);
    else this.options.log.info(message, fields);
  }

  private async loadTypeNames(columns: readonly ColumnState[]): Promise<void> {
    const wanted = new Map<string, ColumnState>();
    for (const column of columns) {
      const key = typeKey(column.typeOid, column.typeModifier);
      if (!this.typeNames.has(key)) wanted.set(key, column);
    }
    if (wanted.size === 0) return;
    const list = [...wanted.values()];
    const { rows } = await this.options.catalog(
      `SELECT i::int4 AS i, format_type(o, m) AS name FROM unnest($1::oid[], $2::int4[]) WITH ORDINALITY AS u(o, m, i)`,
      [list.map((c) => c.typeOid), list.map((c) => c.typeModifier)],
    );
    for (const row of rows) {
      const column = list[Number(row.i) - 1]!;
      this.typeNames.set(typeKey(column.typeOid, column.typeModifier), String(row.name ?? `oid ${column.typeOid}`));
    }
  }

  /** The table as the catalog has it now: each column's nullability and what existing rows hold, and the primary key. */
  private async readCatalog(relationId: number): Promise<{ columns: Map<string, { nullable: boolean; existing?: { value: string } | "computed" }>; primaryKey: string[] }> {
    const { rows } = await this.options.catalog(
      `SELECT a.attname AS name, NOT a.attnotnull AS nullable, a.atthasmissing AS has_missing, a.atthasdef AS has_default,
              CASE WHEN a.atthasmissing THEN array_to_string(a.attmissingval, '') END AS missing,
              array_position((SELECT i.indkey::int2[] FROM pg_catalog.pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary), a.attnum) AS key_position
         FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''`,
      [relationId],
    );
    const columns = new Map<string, { nullable: boolean; existing?: { value: string } | "computed" }>();
    const keyed: { name: string; position: number }[] = [];
    for (const row of rows) {
      const name = String(row.name);
      const existing =
        row.has_missing === true && row.missing !== null
          ? { value: String(row.missing) }
          : row.has_default === true
            ? ("computed" as const)
            : undefined;
      columns.set(name, { nullable: row.nullable === true, ...(existing !== undefined ? { existing } : {}) });
      if (row.key_position !== null && row.key_position !== undefined) keyed.push({ name, position: Number(row.key_position) });
    }
    return { columns, primaryKey: keyed.sort((a, b) => a.position - b.position).map((k) => k.name) };
  }
}

function typeKey(oid: number, modifier: number): string {
  return `${oid}:${modifier}`;
}

function differs(a: TableState, b: TableState): boolean {
  if (a.qualifiedName !== b.qualifiedName || a.columns.length !== b.columns.length) return true;
  return a.columns.some((column, i) => {
    const other = b.columns[i]!;
    return column.name !== other.name || column.typeOid !== other.typeOid || column.typeModifier !== other.typeModifier;
  });
}
