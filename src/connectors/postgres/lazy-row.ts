/**
 * Snapshot rows decoded on demand: a row of a COPY line whose values are parsed the first time
 * they are read. A chunk's events are made only when something needs them (a PostgreSQL →
 * PostgreSQL copy with no steps loads the chunk's bytes, `SourceBatch.bulk`, and makes none);
 * then a step that reads one column decodes one column, and never pays for the other columns'
 * `Decimal`s and `Timestamp`s. Everything reads the same values as from a plain row.
 *
 * A lazy row is a Proxy over an object that holds the line and the values decoded so far under
 * private symbols (`Target`). The traps answer as a plain object
 * with the columns as own, enumerable, writable, configurable data properties would: `get`,
 * `has`/`in`, `ownKeys` (in the order a plain object built column by column has: integer-like
 * names first), `getOwnPropertyDescriptor` — so `Object.keys`, `Object.hasOwn`, spread,
 * `for … in`, `Object.entries` and JSON see the same row. Any change to the row (set, delete,
 * defineProperty, freeze, setPrototypeOf) first materializes it: every column is decoded and
 * defined on the target as a data property, and from then on the traps forward to it. A value
 * is decoded once and the same value (the same `Decimal` object) returned on every read.
 *
 * A value that does not parse throws when it is read (`onError` wraps it), not when the row
 * is made; the primary-key columns are decoded at once, as the event's key needs them.
 */
import { inspect } from "node:util";
import { setField, type Row, type Value } from "../../model/value.js";
import { hexBytes, parseBytea, ValueDecodeError, type RowShape } from "./decode.js";

const LINE = Symbol("dts.lazyRow.line");
const FIELDS = Symbol("dts.lazyRow.fields");
const VALUES = Symbol("dts.lazyRow.values");

/**
 * What a lazy row's Proxy wraps. Its prototype is this class's until the row is materialized
 * (then Object.prototype); the traps report Object.prototype meanwhile. The class gives rows a
 * fast constructor and `util.inspect`, which shows a Proxy's target without its traps, a
 * plain view of the row.
 */
class Target {
  /** The COPY line, until it is split (then null); absent once materialized. */
  [LINE]?: string | null;
  /** The unescaped fields, once split. */
  [FIELDS]?: (string | null)[] | null;
  /** Decoded values by column, undefined where not decoded yet; absent once materialized. */
  [VALUES]?: (Value | undefined)[];

  constructor(line: string, values: (Value | undefined)[]) {
    this[LINE] = line;
    this[FIELDS] = null;
    this[VALUES] = values;
  }

  /** Called with the Proxy as `this`. */
  [inspect.custom](): unknown {
    return { ...(this as unknown as Row) };
  }
}

/** Makes the lazy rows of one table (one handler and lookup table, shared by its rows). */
export class LazyRows {
  private readonly handler: ProxyHandler<Target>;
  private readonly width: number;

  /**
   * `escaped[i]`: column i's COPY text may hold escapes. `onError` turns a decoding error into
   * what the reader should see.
   */
  constructor(
    private readonly shape: RowShape,
    private readonly escaped: readonly boolean[],
    private readonly onError: (error: ValueDecodeError) => Error,
  ) {
    const { names, parsers, table } = shape;
    const width = names.length;
    this.width = width;
    const index = new Map<string, number>();
    names.forEach((name, i) => index.set(name, i));
    // The own keys of a plain object given the columns in order (integer-like names sort first).
    const ordering: Row = {};
    for (const name of names) setField(ordering, name, null);
    const keys: readonly string[] = Object.keys(ordering);

    const split = (target: Target, line: string): (string | null)[] => {
      const fields = splitLine(line, escaped, width);
      target[FIELDS] = fields;
      target[LINE] = null;
      return fields;
    };
    const valueAt = (target: Target, i: number): Value => {
      const values = target[VALUES]!;
      const known = values[i];
      if (known !== undefined) return known;
      const line = target[LINE];
      const fields = typeof line === "string" ? split(target, line) : target[FIELDS]!;
      const text = fields[i];
      let value: Value;
      if (text === null || text === undefined) value = null;
      else {
        try {
          value = parsers[i]!(text);
        } catch (error) {
          throw onError(new ValueDecodeError(table, names[i]!, text, error));
        }
      }
      values[i] = value;
      return value;
    };
    const materialize = (target: Target): void => {
      if (target[VALUES] === undefined) return;
      const values: Value[] = new Array(width);
      for (let i = 0; i < width; i++) values[i] = valueAt(target, i);
      delete target[LINE];
      delete target[FIELDS];
      delete target[VALUES];
      Object.setPrototypeOf(target, Object.prototype);
      for (let i = 0; i < width; i++) setField(target as unknown as Row, names[i]!, values[i]!);
    };

    this.handler = {
      get(target, key, receiver) {
        if (target[VALUES] !== undefined) {
          if (typeof key === "string") {
            const i = index.get(key);
            if (i !== undefined) return valueAt(target, i);
          }
          return Reflect.get(Object.prototype, key, receiver);
        }
        return Reflect.get(target, key, receiver);
      },
      has(target, key) {
        if (target[VALUES] !== undefined) {
          if (typeof key === "string") {
            if (index.has(key)) return true;
          }
          return Reflect.has(Object.prototype, key);
        }
        return Reflect.has(target, key);
      },
      ownKeys(target) {
        if (target[VALUES] !== undefined) return keys as string[];
        return Reflect.ownKeys(target);
      },
      getOwnPropertyDescriptor(target, key) {
        if (target[VALUES] !== undefined) {
          if (typeof key === "string") {
            const i = index.get(key);
            if (i !== undefined) return { value: valueAt(target, i), writable: true, enumerable: true, configurable: true };
          }
          return undefined;
        }
        return Reflect.getOwnPropertyDescriptor(target, key);
      },
      getPrototypeOf(target) {
        return target[VALUES] !== undefined ? Object.prototype : Reflect.getPrototypeOf(target);
      },
      set(target, key, value, receiver) {
        materialize(target);
        return Reflect.set(target, key, value, receiver);
      },
      deleteProperty(target, key) {
        materialize(target);
        return Reflect.deleteProperty(target, key);
      },
      defineProperty(target, key, descriptor) {
        materialize(target);
        return Reflect.defineProperty(target, key, descriptor);
      },
      preventExtensions(target) {
        materialize(target);
        return Reflect.preventExtensions(target);
      },
      setPrototypeOf(target, prototype) {
        materialize(target);
        return Reflect.setPrototypeOf(target, prototype);
      },
    };
  }

  /**
   * A row of `line` (COPY text, the shape's columns in order) with the columns at `eager`
   * decoded now (from their fields alone: the line is split only when another column is read);
   * their values are written to `out`, in `eager`'s order.
   */
  row(line: string, eager: readonly number[], out: Value[]): Row {
    const values: (Value | undefined)[] = new Array(this.width);
    for (let k = 0; k < eager.length; k++) {
      const i = eager[k]!;
      const text = fieldAt(line, i, this.escaped[i]!);
      let value: Value;
      if (text === null) value = null;
      else {
        try {
          value = this.shape.parsers[i]!(text);
        } catch (error) {
          throw this.onError(new ValueDecodeError(this.shape.table, this.shape.names[i]!, text, error));
        }
      }
      values[i] = value;
      out[k] = value;
    }
    const target = new Target(line, values);
    return new Proxy(target, this.handler) as unknown as Row;
  }
}

/**
 * A row decoded at once from its COPY bytes, for a row too large to keep as text (a 50 MB
 * bytea is 100 MB of COPY text): a bytea's hex is decoded straight into its bytes, and only
 * the other fields become strings.
 */
export function decodeCopyRow(shape: RowShape, escaped: readonly boolean[], line: Buffer): Row {
  const row: Row = {};
  const { names, parsers } = shape;
  const width = names.length;
  let from = 0;
  for (let i = 0; i < width; i++) {
    let to = i === width - 1 ? line.length : line.indexOf(0x09, from);
    if (to === -1) to = line.length;
    let value: Value;
    try {
      if (to - from === 2 && line[from] === 0x5c && line[from + 1] === 0x4e) value = null;
      // A bytea's `\x` comes escaped in COPY text (`\\x`); its hex digits never are.
      else if (parsers[i] === parseBytea && to - from >= 3 && line[from] === 0x5c && line[from + 1] === 0x5c && line[from + 2] === 0x78) value = hexBytes(line, from + 3, to);
      else {
        const text = line.toString("utf8", from, to);
        value = parsers[i]!(escaped[i] && text.indexOf("\\") !== -1 ? copyUnescape(text) : text);
      }
    } catch (error) {
      throw new ValueDecodeError(shape.table, names[i]!, line.toString("utf8", from, Math.min(to, from + 80)), error);
    }
    setField(row, names[i]!, value);
    from = to + 1;
  }
  return row;
}

/** Field `index` of a COPY line, unescaped (null for `\N`). */
function fieldAt(line: string, index: number, escaped: boolean): string | null {
  let from = 0;
  for (let i = 0; i < index; i++) {
    const tab = line.indexOf("\t", from);
    if (tab === -1) return null;
    from = tab + 1;
  }
  let to = line.indexOf("\t", from);
  if (to === -1) to = line.length;
  const field = line.slice(from, to);
  return field === "\\N" ? null : escaped && field.indexOf("\\") !== -1 ? copyUnescape(field) : field;
}

/** A COPY line's fields: null for `\N`, else the text with its escapes undone where `escaped`. */
function splitLine(line: string, escaped: readonly boolean[], width: number): (string | null)[] {
  const fields: (string | null)[] = new Array(width);
  let from = 0;
  for (let i = 0; i < width; i++) {
    let to = i === width - 1 ? line.length : line.indexOf("\t", from);
    if (to === -1) to = line.length;
    const field = line.slice(from, to);
    fields[i] = field === "\\N" ? null : escaped[i] && field.indexOf("\\") !== -1 ? copyUnescape(field) : field;
    from = to + 1;
  }
  return fields;
}

const copyUnescapes: Readonly<Record<string, string>> = { b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v" };

/**
 * Undoes COPY's text escapes. PostgreSQL's COPY TO writes only `\\`, `\b`, `\f`, `\n`, `\r`,
 * `\t`, `\v` (and a backslash before the delimiter); the octal and hex forms COPY FROM also
 * reads are taken as character codes.
 */
export function copyUnescape(field: string): string {
  let out = "";
  let from = 0;
  for (let at = field.indexOf("\\"); at !== -1 && at + 1 < field.length; at = field.indexOf("\\", from)) {
    out += field.slice(from, at);
    const c = field[at + 1]!;
    from = at + 2;
    const named = copyUnescapes[c];
    if (named !== undefined) {
      out += named;
    } else if (c >= "0" && c <= "7") {
      let end = at + 2;
      while (end < at + 4 && end < field.length && field[end]! >= "0" && field[end]! <= "7") end++;
      out += String.fromCharCode(parseInt(field.slice(at + 1, end), 8));
      from = end;
    } else if (c === "x" && /^[0-9a-fA-F]/.test(field.slice(at + 2, at + 3))) {
      const hex = /^[0-9a-fA-F]{1,2}/.exec(field.slice(at + 2))![0];
      out += String.fromCharCode(parseInt(hex, 16));
      from = at + 2 + hex.length;
    } else {
      out += c;
    }
  }
  return out + field.slice(from);
}
