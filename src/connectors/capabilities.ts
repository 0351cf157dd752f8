/**
 * A connector is its specs plus capabilities. The specs (options, docs) are all the compile
 * side reads; every capability is optional and loaded on first use (`Lazy`), so that
 * `dts check` imports no driver and a connector declares only what it can do:
 *
 *   createSource / createSink   the reader and the writer the runtime runs
 *   preflight                   what the server must give before a run: settings, privileges,
 *                               keys — run by `dts check --live`; the source's start checks
 *                               the same findings with the same code
 *   describe                    the tables a source captures, with columns in dts's static
 *                               types, so that `dts check --live` can check column names
 *   status                      where the source is, its lag, what it retains on the server
 *   verify                      a reader of tables for `dts verify`: counts, checksums and the
 *                               rows of chosen buckets, in the canonical texts of
 *                               src/model/canonical.ts, so any two engines compare
 *   drop                        what the connector keeps on its server for the pipeline
 *                               (replication slots, publications), for `dts drop`
 *   checkpointStore             a sink that can keep a pipeline's checkpoints
 *                               (`checkpoint: "postgres"`): the store, for the tools
 *
 * Each connector folder declares one `Connector` in its `index.ts`; src/connectors/registry.ts
 * lists them. The CLI and the runtime reach a connector only through these types.
 */
import { catalogue, catalogueMessage, type DiagnosticCode } from "../diagnostics/catalogue.js";
import type { StaticType } from "../expr/signatures.js";
import type { CanonicalKind } from "../model/canonical.js";
import type { Value } from "../model/value.js";
import type { CheckpointStore, SinkFactory, SourceCheckpoint, SourceFactory } from "../runtime/contracts.js";
import type { ConnectorSpec } from "./spec.js";

/** A capability, loaded when first asked for (a dynamic import of the connector's module). */
export type Lazy<T> = () => Promise<T>;

export interface Connector {
  readonly name: string;
  readonly source?: SourceConnector;
  readonly sink?: SinkConnector;
}

export interface SourceConnector {
  readonly spec: ConnectorSpec;
  /** Absent: specified, not built yet. */
  readonly createSource?: Lazy<SourceFactory>;
  readonly preflight?: Lazy<Preflight>;
  readonly describe?: Lazy<Describe>;
  readonly status?: Lazy<Status>;
  readonly verify?: Lazy<VerifySource>;
  readonly drop?: Lazy<Drop>;
}

export interface SinkConnector {
  readonly spec: ConnectorSpec;
  /** Absent: specified, not built yet. */
  readonly createSink?: Lazy<SinkFactory>;
  readonly preflight?: Lazy<Preflight>;
  readonly verify?: Lazy<VerifySink>;
  readonly drop?: Lazy<Drop>;
  readonly checkpointStore?: Lazy<CheckpointStoreFactory>;
}

/** Checks that a connector's declaration is one: a spec's role matches where it is declared. */
export function declareConnector<C extends Connector>(connector: C): C {
  for (const role of ["source", "sink"] as const) {
    const spec = connector[role]?.spec;
    if (spec !== undefined && (spec.role !== role || spec.name !== connector.name)) {
      throw new Error(`connector ${connector.name}: its ${role} declares the spec of the ${spec.name} ${spec.role}`);
    }
  }
  return connector;
}

/** What every capability is called with: one source or sink of one pipeline. */
export interface ConnectorContext {
  readonly pipeline: string;
  /** The source's or sink's name in the pipeline. */
  readonly name: string;
  /** Options fixed at start, resolved (env() read), defaults filled. */
  readonly options: Readonly<Record<string, Value>>;
  /** The pipeline file's folder: relative paths in options are relative to it. */
  readonly baseDir: string;
  /** Who asks, for connection names on servers: "dts verify". */
  readonly tool: string;
}

// ---------------------------------------------------------------- preflight

export interface PreflightContext extends ConnectorContext {
  /** Some flow from this source reads `before`; undefined when it is not known (at start). */
  readonly readsBefore?: boolean;
}

/**
 * Something the server cannot give the pipeline, found before it runs. The message is the
 * catalogue's template for `code` filled with `args`; the severity is the catalogue's.
 */
export interface Finding {
  readonly code: DiagnosticCode;
  readonly args: Readonly<Record<string, string | number>>;
  /** What to do about it: a statement to run, a setting to change. */
  readonly fix?: string;
  /** What it is about, so that the check can point at it: an option, or the flow's read of `before`. */
  readonly about?: { readonly option: string } | "before";
}

/** A finding's message: the catalogue's template for its code, filled. */
export function findingMessage(finding: Finding): string {
  return catalogueMessage(finding.code, finding.args);
}

export function findingSeverity(finding: Finding): "error" | "warning" {
  return catalogue[finding.code].severity;
}

/** Throws a ConnectorError when the server cannot be asked at all (`dts check --live` exits 3). */
export type Preflight = (context: PreflightContext) => Promise<readonly Finding[]>;

// ---------------------------------------------------------------- describe

export interface DescribedColumn {
  readonly name: string;
  /** As the engine writes the type: `numeric(10,2)`. */
  readonly type: string;
  /** What the value is in dts. */
  readonly valueType: StaticType;
}

export interface DescribedTable {
  /** `schema.table`, as events name it. */
  readonly name: string;
  readonly columns: readonly DescribedColumn[];
}

/** The tables a source captures that exist (one its options name that does not is a preflight finding). */
export type Describe = (context: ConnectorContext) => Promise<readonly DescribedTable[]>;

// ---------------------------------------------------------------- status

export interface StatusReport {
  /** After the connector's name in the heading: the server, without its password. */
  readonly where: string;
  /** Label and text, printed as a table. */
  readonly rows: readonly (readonly [string, string])[];
  /**
   * What the source keeps on its server for the pipeline while no run reads it, said as a
   * warning: "slot dts_x is inactive and retains 2.7 GB of WAL". Empty when nothing.
   */
  readonly retained: readonly string[];
}

export type Status = (context: ConnectorContext, checkpoint: SourceCheckpoint | undefined) => Promise<StatusReport>;

// ---------------------------------------------------------------- drop

/** One thing a connector keeps for the pipeline on its server, found now. */
export interface DropItem {
  /** `replication slot dts_shop_pg on postgres://…`, with what it holds. */
  readonly what: string;
  /** Removes it; a thing that has gone meanwhile is no error. */
  remove(): Promise<void>;
}

export type Drop = (context: ConnectorContext) => Promise<readonly DropItem[]>;

// ---------------------------------------------------------------- checkpoints

export type CheckpointStoreFactory = (context: ConnectorContext) => CheckpointStore;

// ---------------------------------------------------------------- verify

/** A column as `dts verify` sees it. */
export interface VerifyColumn {
  readonly name: string;
  /** As the engine writes the type (a domain by its name): `numeric(10,2)`, `DECIMAL(38,2)`. */
  readonly type: string;
  /** The canonical kind its values print as; undefined when the engine has none for the type. */
  readonly kind: CanonicalKind | undefined;
}

export interface VerifyTable {
  /** As the report names it: `public.items`, or a DuckDB table's name. */
  readonly name: string;
  /** In the table's order; generated columns (never copied) left out. */
  readonly columns: readonly VerifyColumn[];
  /** The columns that identify a row (a primary key, or a replica identity); empty without. */
  readonly key: readonly string[];
  /** A column by name, as the engine matches names (DuckDB ignores ASCII case). */
  column(name: string): VerifyColumn | undefined;
}

/** How one column's values are printed for hashing. */
export type ValueForm =
  /** Both sides in one engine: its own comparison of the two types (`VerifyReader.native`). */
  | { readonly kind: "native"; readonly other: VerifyColumn }
  /** The canonical text of a kind (src/model/canonical.ts). */
  | { readonly kind: "canonical"; readonly as: CanonicalKind }
  /** The engine's own text of the value. */
  | { readonly kind: "text" };

export interface ColumnForm {
  readonly column: VerifyColumn;
  readonly form: ValueForm;
}

/** The rows of a table as hashed: value columns in name order, and the key's. */
export interface RowQuery {
  readonly table: VerifyTable;
  readonly columns: readonly ColumnForm[];
  readonly key: readonly ColumnForm[];
}

export interface Checksum {
  readonly rows: bigint;
  /** The exact sum of the row hashes, in decimal (src/model/canonical.ts). */
  readonly sum: string;
}

/** `note` undefined: compared exactly, by the type's own text; else how the values are normalised. */
export type NativeComparison = { readonly note: string | undefined } | { readonly unverifiable: string };

/**
 * One side of `dts verify`: a connection to a database (or a file), reading tables in the row
 * texts of src/model/canonical.ts. Everything is computed where the data is; only counts,
 * sums, and the key texts and hashes of the rows of differing buckets come back.
 */
export interface VerifyReader {
  /** The SQL dialect: two readers of one engine compare equal types natively. */
  readonly engine: string;
  /** Where, for messages: a server URL without its password, a file. */
  readonly where: string;
  /** The table, or undefined when it does not exist. */
  table(name: string): Promise<VerifyTable | undefined>;
  /**
   * How this engine compares `column` with `other`, a column of the same engine: exactly by
   * the type's own text, or normalised (the note says how), or not at all.
   */
  native(column: VerifyColumn, other: VerifyColumn): NativeComparison;
  /** Why this engine cannot print `column`'s values as the canonical text of `kind`, if it cannot. */
  cannotPrint(column: VerifyColumn, kind: CanonicalKind): string | undefined;
  /** Row count and checksum. */
  summary(query: RowQuery): Promise<Checksum>;
  /** Per bucket of the key (among `buckets`, a power of two): count and checksum; empty buckets absent. */
  buckets(query: RowQuery, buckets: number): Promise<ReadonlyMap<number, Checksum>>;
  /** The rows of the `chosen` buckets: key row text → row hash (hex). */
  rows(query: RowQuery, buckets: number, chosen: readonly number[]): Promise<ReadonlyMap<string, string>>;
  close(): Promise<void>;
}

export interface VerifySourceReader extends VerifyReader {
  /** The tables the source captures, as `schema.table`. */
  capturedTables(): Promise<readonly string[]>;
}

/** Where a sink keeps the rows of events bound for `target`. */
export type SinkTable = { readonly table: string } | { readonly unverifiable: string };

export interface VerifySinkReader extends VerifyReader {
  /** The table holding `target`'s rows (`dts verify` refuses to compare one that several source tables land in). */
  locate(target: string): SinkTable;
}

export type VerifySource = (context: ConnectorContext) => Promise<VerifySourceReader>;
export type VerifySink = (context: ConnectorContext) => Promise<VerifySinkReader>;
