/**
 * The captured tables: `tables` patterns resolved against the catalog, and what the source and
 * the checker need to know of each (columns with types, key, replica identity).
 *
 * A pattern is `schema.table` or a glob over that text (`*` any characters, `?` one); a
 * pattern without a dot means the `public` schema. Globs skip partitions (their partitioned
 * parent is captured instead, with changes published under the parent's name) and system
 * schemas. A pattern that matches nothing is an error naming it, with the closest table name
 * when it looks like a typo: a pipeline that silently captures nothing is worse than one that
 * does not start.
 *
 * Keys: the primary key; without one, the replica identity index; without one, every column when
 * the table is REPLICA IDENTITY FULL (each change then carries the whole old row, which is
 * what identifies it). A table with none of these cannot have its updates and deletes applied
 * by key, so it is an error with the two ways out.
 */
import { closestMatch } from "../../diagnostics/suggest.js";
import { ConnectorError } from "../../runtime/contracts.js";
import { connect, describeAddress, endQuietly, queryError, serverAddress, type ServerAddress } from "./connection.js";
import { TypeRegistry, type StaticType } from "./decode.js";

export type ReplicaIdentity = "default" | "nothing" | "full" | "index";

export interface ColumnDescription {
  readonly name: string;
  /** The type as PostgreSQL writes it: `integer`, `numeric(10,2)`, `character varying(20)`, `text[]`, `public.mood`. */
  readonly type: string;
  readonly typeOid: number;
  /** The type's modifier (`atttypmod`: a length, a precision), -1 when none: with the OID, what a Relation message says of a column. */
  readonly typeModifier: number;
  /** What the value is in dts (see decode.ts). */
  readonly staticType: StaticType;
  readonly nullable: boolean;
  /** A generated column: not copied and not streamed (pgoutput does not send them). */
  readonly generated: boolean;
}

export interface TableDescription {
  readonly schema: string;
  readonly name: string;
  /** `schema.table`. */
  readonly qualifiedName: string;
  readonly oid: number;
  readonly kind: "table" | "partitioned";
  readonly columns: readonly ColumnDescription[];
  /** Primary-key columns in key order; empty when the table has none. */
  readonly primaryKey: readonly string[];
  /** The columns every change event's `key` holds (see the file comment). */
  readonly keyColumns: readonly string[];
  readonly replicaIdentity: ReplicaIdentity;
  /** From pg_class.reltuples, or the statistics' live-row count before the first ANALYZE; -1 when neither knows. */
  readonly estimatedRows: number;
}

type Query = (sql: string, params?: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>;

const identityNames: Record<string, ReplicaIdentity> = { d: "default", n: "nothing", f: "full", i: "index" };

/**
 * Columns, types, primary key and replica identity of the tables `patterns` name, for
 * `dts check --live`. Throws a ConnectorError naming the server, or the pattern that matches
 * nothing. Tables without a usable key are described, not rejected (`keyColumns` is empty).
 */
export async function describeTables(url: string, patterns: readonly string[]): Promise<TableDescription[]> {
  const client = await connect(url, { role: "catalog", application: "dts check", resuming: false });
  try {
    const query: Query = (sql, params) => client.query(sql, params);
    return await resolveTables(query, patterns, serverAddress(url), new TypeRegistry());
  } finally {
    await endQuietly(client);
  }
}

/** Server facts the checker and the source's start-up checks look at. */
export interface ServerDescription {
  readonly version: number;
  readonly walLevel: string;
  /** The user may open replication connections (REPLICATION attribute or superuser). */
  readonly replication: boolean;
  readonly maxReplicationSlots: number;
  /** `max_slot_wal_keep_size` as the server prints it (`-1`: a slot keeps WAL without bound); null before PostgreSQL 13. */
  readonly maxSlotWalKeepSize: string | null;
}

export async function describeServer(url: string): Promise<ServerDescription> {
  const client = await connect(url, { role: "catalog", application: "dts check", resuming: false });
  try {
    return await readServer((sql, params) => client.query(sql, params), serverAddress(url));
  } finally {
    await endQuietly(client);
  }
}

export async function readServer(query: Query, address: ServerAddress): Promise<ServerDescription> {
  try {
    const { rows } = await query(
      `SELECT current_setting('server_version_num')::int4 AS version, current_setting('wal_level') AS wal_level,
              (SELECT rolsuper OR rolreplication FROM pg_catalog.pg_roles WHERE rolname = current_user) AS replication,
              current_setting('max_replication_slots')::int4 AS max_slots,
              current_setting('max_slot_wal_keep_size', true) AS max_slot_wal_keep_size`,
    );
    const row = rows[0]!;
    return {
      version: Number(row.version),
      walLevel: String(row.wal_level),
      replication: row.replication === true,
      maxReplicationSlots: Number(row.max_slots),
      maxSlotWalKeepSize: row.max_slot_wal_keep_size === null || row.max_slot_wal_keep_size === undefined ? null : String(row.max_slot_wal_keep_size),
    };
  } catch (error) {
    throw queryError(error, address, "reading server settings");
  }
}

/** `*` and `?` globs over `schema.table`; a pattern without a dot is in `public`. */
export function patternToRegExp(pattern: string): RegExp {
  const qualified = pattern.includes(".") ? pattern : `public.${pattern}`;
  const source = qualified.replace(/[\\^$+.()|[\]{}]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${source}$`, "s");
}

export function isGlob(pattern: string): boolean {
  return /[*?]/.test(pattern);
}

/** Resolves patterns to tables, in pattern order (a glob's matches sorted by name), each once. */
export async function resolveTables(query: Query, patterns: readonly string[], address: ServerAddress, types: TypeRegistry): Promise<TableDescription[]> {
  let candidates: Record<string, unknown>[];
  let database: string;
  try {
    const result = await query(
      `SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
              c.relispartition AS partition, c.relreplident::text AS identity,
              -- reltuples is -1 until the first VACUUM/ANALYZE; the statistics' live count fills in.
              COALESCE(NULLIF(c.reltuples, -1), s.n_live_tup, -1)::float8 AS reltuples,
              current_database() AS database
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_catalog.pg_stat_all_tables s ON s.relid = c.oid
        WHERE c.relkind IN ('r', 'p')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
        ORDER BY n.nspname, c.relname`,
    );
    candidates = result.rows;
    database = String(result.rows[0]?.database ?? address.database);
  } catch (error) {
    throw queryError(error, address, "listing tables");
  }
  const byName = new Map(candidates.map((row) => [`${String(row.schema)}.${String(row.name)}`, row]));
  const chosen = new Map<string, Record<string, unknown>>();
  for (const pattern of patterns) {
    const matches: string[] = [];
    if (!isGlob(pattern)) {
      const name = pattern.includes(".") ? pattern : `public.${pattern}`;
      if (byName.has(name)) matches.push(name);
    } else {
      const regex = patternToRegExp(pattern);
      for (const [name, row] of byName) if (row.partition !== true && regex.test(name)) matches.push(name);
    }
    if (matches.length === 0) throw noMatch(pattern, [...byName.keys()], database, address);
    for (const name of matches) if (!chosen.has(name)) chosen.set(name, byName.get(name)!);
  }
  return describe(query, [...chosen.values()], address, types);
}

/** A `tables` pattern that names no table: the message says so, with the closest name when there is one. */
export class NoTableError extends ConnectorError {
  constructor(
    message: string,
    /** The pattern as written. */
    readonly pattern: string,
    /** `schema.table` for a plain name; undefined for a glob. */
    readonly table: string | undefined,
    /** `database shop at 127.0.0.1:5432`. */
    readonly where: string,
    /** What to write instead: the closest name, or some of the tables there are. */
    readonly hint: string | undefined,
  ) {
    super(message, false, { code: "DTS7105" });
    this.name = "NoTableError";
  }
}

function noMatch(pattern: string, names: readonly string[], database: string, address: ServerAddress): NoTableError {
  const where = `database ${database} at ${describeAddress(address)}`;
  if (!isGlob(pattern)) {
    const wanted = pattern.includes(".") ? pattern : `public.${pattern}`;
    const suggestion = closestMatch(wanted, names);
    const hint = suggestion !== undefined ? `did you mean ${suggestion}?` : undefined;
    return new NoTableError(`table ${wanted} does not exist in ${where}${hint !== undefined ? `; ${hint}` : ""}`, pattern, wanted, where, hint);
  }
  const some = names.slice(0, 10).join(", ");
  const hint = names.length > 0 ? `its tables include ${some}${names.length > 10 ? ", ..." : ""}` : "it has no tables";
  return new NoTableError(`no table matches "${pattern}" in ${where}; ${hint}`, pattern, undefined, where, hint);
}

async function describe(query: Query, tables: readonly Record<string, unknown>[], address: ServerAddress, types: TypeRegistry): Promise<TableDescription[]> {
  if (tables.length === 0) return [];
  const oids = tables.map((row) => String(row.oid));
  let columns: Record<string, unknown>[];
  let keys: Record<string, unknown>[];
  try {
    columns = (
      await query(
        `SELECT a.attrelid::int8 AS rel, a.attname AS name, a.atttypid::int4 AS type_oid, a.atttypmod AS type_modifier,
                format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable, a.attgenerated::text AS generated
           FROM pg_catalog.pg_attribute a
          WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY a.attrelid, a.attnum`,
        [oids],
      )
    ).rows;
    keys = (
      await query(
        `SELECT i.indrelid::int8 AS rel, i.indisprimary AS primary, a.attname AS name
           FROM pg_catalog.pg_index i
           CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
           JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
          WHERE i.indrelid = ANY($1::oid[]) AND (i.indisprimary OR i.indisreplident)
          ORDER BY i.indrelid, i.indisprimary DESC, k.position`,
        [oids],
      )
    ).rows;
    await types.load(query as (sql: string, params: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>, columns.map((row) => Number(row.type_oid)));
  } catch (error) {
    throw queryError(error, address, "describing tables");
  }
  return tables.map((table) => {
    const rel = String(table.oid);
    const tableColumns: ColumnDescription[] = columns
      .filter((row) => String(row.rel) === rel)
      .map((row) => ({
        name: String(row.name),
        type: String(row.type),
        typeOid: Number(row.type_oid),
        typeModifier: Number(row.type_modifier),
        staticType: types.column(Number(row.type_oid)).staticType,
        nullable: row.nullable === true,
        generated: String(row.generated ?? "") !== "",
      }));
    const primaryKey = keys.filter((row) => String(row.rel) === rel && row.primary === true).map((row) => String(row.name));
    const identityIndex = keys.filter((row) => String(row.rel) === rel && row.primary !== true).map((row) => String(row.name));
    const replicaIdentity = identityNames[String(table.identity)] ?? "default";
    const keyColumns =
      primaryKey.length > 0
        ? primaryKey
        : replicaIdentity === "index" && identityIndex.length > 0
          ? identityIndex
          : replicaIdentity === "full"
            ? tableColumns.filter((column) => !column.generated).map((column) => column.name)
            : [];
    return {
      schema: String(table.schema),
      name: String(table.name),
      qualifiedName: `${String(table.schema)}.${String(table.name)}`,
      oid: Number(table.oid),
      kind: table.kind === "p" ? "partitioned" : "table",
      columns: tableColumns,
      primaryKey,
      keyColumns,
      replicaIdentity,
      estimatedRows: Number(table.reltuples),
    } satisfies TableDescription;
  });
}
