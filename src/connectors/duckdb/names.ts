/**
 * Where the duckdb sink keeps a source table: the one mapping from an event's target to a DuckDB
 * table, shared by the sink and by `dts verify`, which must look in the same table.
 *
 * A target `schema.table` (PostgreSQL) or `db.table` (MySQL) is the table `table` in the DuckDB
 * schema `schema` — `shop.orders` is `"shop"."orders"` — split at the first dot, so the mapping
 * can be read backwards and two targets never name one table (`a.b_c` and `a_b.c` stay
 * `"a"."b_c"` and `"a_b"."c"`), and a query reads as it did against the source. A target
 * without a dot (a name a `route` step chose) is a table in DuckDB's default schema `main`. The
 * sink's `table` option overrides it all: every event then goes to that one table in `main`.
 *
 * Two things stay the sink's to check, since they depend on more than one name: DuckDB matches
 * names ignoring ASCII case (so `Shop.Orders` and `shop.orders` would be one table), and `x` and
 * `main.x` are one table.
 *
 * Before, a target was one name in `main` with "." replaced by "_" (`shop_orders`), which gave
 * `a.b_c` and `a_b.c` the same table. `legacyTableFor` names that table, so that the sink finds
 * what the old naming wrote and says so rather than start a second table beside it.
 */

/** DuckDB's default schema: tables of targets without a schema, and the `table` option's table. */
export const DEFAULT_SCHEMA = "main";

/** A DuckDB table, unquoted, as the catalog spells it or as it is to be created. */
export interface DuckDBTableName {
  readonly schema: string;
  readonly table: string;
}

/**
 * The DuckDB table the duckdb sink writes the events of `target` to: the sink's `table` option
 * when it is set, otherwise the target's schema and table.
 */
export function tableFor(target: string, tableOption?: string | null): DuckDBTableName {
  if (tableOption !== undefined && tableOption !== null) return { schema: DEFAULT_SCHEMA, table: tableOption };
  const dot = target.indexOf(".");
  if (dot < 0) return { schema: DEFAULT_SCHEMA, table: target };
  return { schema: target.slice(0, dot), table: target.slice(dot + 1) };
}

/** The table the naming before schemas gave `target` (`main.shop_orders`), when it differs from `tableFor`'s. */
export function legacyTableFor(target: string): DuckDBTableName | undefined {
  return target.includes(".") ? { schema: DEFAULT_SCHEMA, table: target.replaceAll(".", "_") } : undefined;
}

/** An identifier in double quotes, as DuckDB reads it whatever characters it holds. */
export function quoteIdentifier(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}

/** `"schema"."table"`, for SQL and for messages. */
export function qualifiedName(name: DuckDBTableName): string {
  return `${quoteIdentifier(name.schema)}.${quoteIdentifier(name.table)}`;
}

const foldedNames = new Map<string, string>();

/** A name as DuckDB compares it: ASCII letters folded to lower case ("A" is "a", but "É" is not "é"). */
export function fold(name: string): string {
  let folded = foldedNames.get(name);
  if (folded === undefined) {
    folded = name.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
    // Names repeat (columns, tables); the bound only guards against rows with ever-new names.
    if (foldedNames.size >= 10_000) foldedNames.clear();
    foldedNames.set(name, folded);
  }
  return folded;
}

/** One key per DuckDB table, equal for names DuckDB takes as the same table. */
export function tableKey(name: DuckDBTableName): string {
  return `${fold(name.schema)}\u0000${fold(name.table)}`;
}
