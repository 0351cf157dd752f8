/**
 * Expressions compiled once into closures.
 *
 * The input is the plan's expression tree (`PlanExpr`), not the AST: the runtime compiles a
 * plan as it is stored, with no syntax and no source positions. An ExpressionError points at
 * the plan node that failed; the caller names the place (the step or option and its text).
 *
 * `compileExpr` walks the tree a single time, when the pipeline starts, and turns every node
 * into a JavaScript closure over its children's closures; an event then runs straight-line
 * calls with no tree walking, no name lookups and no `eval`. What can be settled at compile
 * time is: names resolve to accessors, `let`s to their values, `env()` is read, literal regexes
 * are compiled, and a node whose inputs are all constant is folded to its value (unless it
 * throws, in which case it is left to throw per event, where the runtime dead-letters it — a
 * `coalesce(row.x, 1/0)` must not fail a pipeline whose rows all have x).
 *
 * Null rules (documented in docs/language.md):
 *   - a member of null, a missing field, an index out of range or of null: null
 *   - arithmetic and `+` with a null operand: null; unary `-` and `not` of null: null
 *   - `==`/`!=` compare nulls like any value (`null == null` is true); `<` `<=` `>` `>=` with a
 *     null: null
 *   - `and`/`or` are three-valued, as in SQL: `false and null` is false, `true and null` null,
 *     `true or null` true, `false or null` null; the right side is evaluated only when needed
 *   - `??` gives the right side when the left is null; `is null` / `is not null` never null
 *   - a function given a null argument returns null without running, except `coalesce`,
 *     `concat` (nulls skipped) and `json` (`json(null)` is "null")
 *   - a template prints a null part as ""
 *   - `x in list` is true when some item `== x` (so `null in [null]` is true); `x in null` is
 *     null; `null in "text"` is null
 *   - a filter treats a null condition as false (the runtime's rule)
 *   - a JSON null (JSON_NULL, a json column holding the document `null`) is a value, not null:
 *     `is null` is false, `==` tells it from null, `??` and `coalesce` keep it, `json()` prints
 *     "null"; a member or an index of it is null, as of null
 * Run-time type errors (`"a" * 2` when a column turns out to be text) throw ExpressionError.
 */
import { Decimal } from "../model/decimal.js";
import { qualifiedTableName, type ChangeEvent, type SourceInfo } from "../model/event.js";
import { Timestamp } from "../model/timestamp.js";
import {
  compareNumeric,
  compareStrings,
  getField,
  isNumeric,
  isRecord,
  JsonNull,
  normalizeInteger,
  setField,
  typeOf,
  valuesEqual,
  type Row,
  type Value,
} from "../model/value.js";
import type { PlanExpr } from "../plan/types.js";
import { BUILTINS, envValue, stringOf, type CallSite } from "./builtins.js";
import { ExpressionError } from "./errors.js";
import { arithmetic, negate } from "./numeric.js";
import { FUNCTIONS, REGEX_FLAGS, SOURCE_FIELDS } from "./signatures.js";

/** The plan expression node of one kind. */
type Node<K extends PlanExpr["kind"]> = Extract<PlanExpr, { readonly kind: K }>;

export interface EvalContext {
  readonly event: ChangeEvent;
  /** The image `row` names: `after ?? before`, or the image a map step is reshaping. */
  readonly row: Row | null;
  /** The destination table name: `table` unless a route step set it. */
  readonly target: string;
}

export type CompiledExpr = (ctx: EvalContext) => Value;

export interface CompileScope {
  /** Values of the file's `let`s, already evaluated. */
  readonly lets: ReadonlyMap<string, Value>;
  /** Reads an environment variable for env(); defaults to process.env. */
  readonly env?: (name: string) => string | undefined;
}

/** Compiles an expression evaluated per event. Throws ExpressionError for unknown names and functions. */
export function compileExpr(expr: PlanExpr, scope: CompileScope): CompiledExpr {
  return new Compiler(scope, false).compile(expr).fn;
}

/**
 * Evaluates an expression fixed at start (a `let`, a start-time option): it may call env()
 * and use lets, but a field of the change event is an ExpressionError ("not-at-start").
 */
export function evaluateAtStart(expr: PlanExpr, scope: CompileScope): Value {
  return new Compiler(scope, true).compile(expr).fn(noEvent);
}

/** The context an event is evaluated in outside a map step: `row` is after ?? before. */
export function eventContext(event: ChangeEvent, target?: string): EvalContext {
  return { event, row: event.after ?? event.before, target: target ?? qualifiedTableName(event.source) };
}

const sourceFields: Readonly<Record<keyof typeof SOURCE_FIELDS, (source: SourceInfo) => Value>> = {
  connector: (s) => s.connector,
  db: (s) => s.db,
  schema: (s) => s.schema,
  table: (s) => s.table,
  position: (s) => s.position.token,
  ts: (s) => s.ts,
  txid: (s) => s.txid ?? null,
};

/** `source` as expressions see it: the position as its token, a missing txid as null. */
export function sourceRecord(source: SourceInfo): Row {
  const out: Row = {};
  for (const [name, read] of Object.entries(sourceFields)) out[name] = read(source);
  return out;
}

// Constant nodes are evaluated against this: reading the event from it is a compiler bug.
const noEvent: EvalContext = Object.freeze({
  get event(): ChangeEvent {
    throw new Error("internal error: an expression fixed at start read the change event");
  },
  get row(): Row | null {
    throw new Error("internal error: an expression fixed at start read the row");
  },
  get target(): string {
    throw new Error("internal error: an expression fixed at start read the target");
  },
});

interface Compiled {
  readonly fn: CompiledExpr;
  /** Set when the node has the same value for every event; `value` is then that value. */
  readonly constant: boolean;
  readonly value?: Value;
}

function constant(value: Value): Compiled {
  // A list, record or bytes is mutable: every evaluation gets its own copy.
  const fn: CompiledExpr = typeof value === "object" && value !== null && !(value instanceof Decimal) && !(value instanceof Timestamp)
    ? () => copyValue(value)
    : () => value;
  return { fn, constant: true, value };
}

function copyValue(value: Value): Value {
  if (Array.isArray(value)) return value.map(copyValue);
  if (value instanceof Uint8Array) return Buffer.from(value);
  if (isRecord(value)) {
    const out: Row = {};
    for (const k of Object.keys(value)) setField(out, k, copyValue(value[k]!));
    return out;
  }
  return value;
}

function dynamic(fn: CompiledExpr): Compiled {
  return { fn, constant: false };
}

/** A node over `children`: folded to a constant when they all are and evaluating it succeeds. */
function combine(children: readonly Compiled[], fn: CompiledExpr): Compiled {
  if (!children.every((c) => c.constant)) return dynamic(fn);
  let value: Value;
  try {
    value = fn(noEvent);
  } catch {
    return dynamic(fn);
  }
  return constant(value);
}

function typeError(message: string, node: PlanExpr): never {
  throw new ExpressionError("type", message, node);
}

function cannotApply(operator: string, node: PlanExpr, left: Value, right?: Value): never {
  return typeError(
    right === undefined
      ? `operator "${operator}" cannot apply to ${typeOf(left)}`
      : `operator "${operator}" cannot apply to ${typeOf(left)} and ${typeOf(right)}`,
    node,
  );
}

function requireBoolean(value: Value, operator: string, node: PlanExpr): boolean | null {
  if (value === null || typeof value === "boolean") return value;
  return typeError(`operator "${operator}" needs booleans, found ${typeOf(value)}`, node);
}

/** `<` and friends: numbers of any kinds, or two strings, timestamps, booleans or bytes. Null when either is null. */
function orderOf(left: Value, right: Value, operator: string, node: PlanExpr): number | null {
  if (left === null || right === null) return null;
  if (isNumeric(left) && isNumeric(right)) return compareNumeric(left, right);
  if (typeof left === "string" && typeof right === "string") return compareStrings(left, right);
  if (left instanceof Timestamp && right instanceof Timestamp) return left.compare(right);
  if (typeof left === "boolean" && typeof right === "boolean") return Number(left) - Number(right);
  if (left instanceof Uint8Array && right instanceof Uint8Array) return Buffer.compare(left, right);
  return cannotApply(operator, node, left, right);
}

function compileRegex(pattern: string, node: PlanExpr): RegExp {
  try {
    return new RegExp(pattern, REGEX_FLAGS);
  } catch (error) {
    throw new ExpressionError("invalid-value", `invalid regular expression: ${(error as Error).message}`, node);
  }
}

class Compiler {
  constructor(
    private readonly scope: CompileScope,
    /** Compiling an expression fixed at start: event fields are errors. */
    private readonly atStart: boolean,
  ) {}

  compile(expr: PlanExpr): Compiled {
    switch (expr.kind) {
      case "number":
        return constant(this.number(expr));
      case "string":
        return constant(expr.value);
      case "boolean":
        return constant(expr.value);
      case "null":
        return constant(null);
      case "template":
        return this.template(expr);
      case "list": {
        const items = expr.items.map((item) => this.compile(item));
        const fns = items.map((item) => item.fn);
        return combine(items, (ctx) => fns.map((fn) => fn(ctx)));
      }
      case "record":
        return this.record(expr);
      case "identifier":
        return this.identifier(expr.name, expr);
      case "member":
        return this.member(expr);
      case "index":
        return this.index(expr);
      case "unary":
        return this.unary(expr);
      case "binary":
        return this.binary(expr);
      case "isNull": {
        const operand = this.compile(expr.operand);
        const fn = operand.fn;
        return combine([operand], expr.negated ? (ctx) => fn(ctx) !== null : (ctx) => fn(ctx) === null);
      }
      case "call":
        return this.call(expr);
      default: {
        const unreachable: never = expr;
        return unreachable;
      }
    }
  }

  private number(expr: Node<"number">): Value {
    try {
      if (expr.fractional) return new Decimal(expr.text);
      return normalizeInteger(BigInt(expr.text));
    } catch (error) {
      throw new ExpressionError("invalid-value", `invalid number ${expr.text}: ${(error as Error).message}`, expr);
    }
  }

  private template(expr: Node<"template">): Compiled {
    const parts = expr.parts.map((part) => (typeof part === "string" ? constant(part) : this.compile(part)));
    const fns = parts.map((p) => p.fn);
    return combine(parts, (ctx) => {
      let out = "";
      for (const fn of fns) {
        const v = fn(ctx);
        if (v !== null) out += stringOf(v);
      }
      return out;
    });
  }

  private record(expr: Node<"record">): Compiled {
    type Entry = { kind: "field"; name: string; fn: CompiledExpr } | { kind: "spread"; fn: CompiledExpr; node: PlanExpr } | { kind: "drop"; name: string };
    const children: Compiled[] = [];
    const entries: Entry[] = expr.entries.map((entry): Entry => {
      switch (entry.kind) {
        case "field": {
          const value = this.compile(entry.value);
          children.push(value);
          return { kind: "field", name: entry.name, fn: value.fn };
        }
        case "spread": {
          const value = this.compile(entry.value);
          children.push(value);
          return { kind: "spread", fn: value.fn, node: entry.value };
        }
        case "drop":
          return { kind: "drop", name: entry.name };
        default: {
          const unreachable: never = entry;
          return unreachable;
        }
      }
    });
    return combine(children, (ctx) => {
      const out: Row = {};
      for (const entry of entries) {
        if (entry.kind === "field") {
          setField(out, entry.name, entry.fn(ctx));
        } else if (entry.kind === "spread") {
          const source = entry.fn(ctx);
          // Spreading null (`...before` on an insert) adds nothing.
          if (source === null) continue;
          if (!isRecord(source)) typeError(`only a record can be spread, found ${typeOf(source)}`, entry.node);
          for (const k of Object.keys(source)) setField(out, k, source[k]!);
        } else if (Object.hasOwn(out, entry.name)) {
          delete out[entry.name];
        }
      }
      return out;
    });
  }

  private eventField(name: string, node: PlanExpr): void {
    if (this.atStart) {
      throw new ExpressionError("not-at-start", `"${name}" is a field of the change event; a value fixed at start cannot use it`, node);
    }
  }

  private identifier(name: string, node: Node<"identifier">): Compiled {
    switch (name) {
      case "op":
        this.eventField(name, node);
        return dynamic((ctx) => ctx.event.op);
      case "before":
        this.eventField(name, node);
        return dynamic((ctx) => ctx.event.before);
      case "after":
        this.eventField(name, node);
        return dynamic((ctx) => ctx.event.after);
      case "row":
        this.eventField(name, node);
        return dynamic((ctx) => ctx.row);
      case "key":
        this.eventField(name, node);
        return dynamic((ctx) => ctx.event.key);
      case "table":
        this.eventField(name, node);
        return dynamic((ctx) => qualifiedTableName(ctx.event.source));
      case "target":
        this.eventField(name, node);
        return dynamic((ctx) => ctx.target);
      case "source":
        this.eventField(name, node);
        return dynamic((ctx) => sourceRecord(ctx.event.source));
      default:
        if (this.scope.lets.has(name)) return constant(this.scope.lets.get(name)!);
        throw new ExpressionError("unknown-name", `unknown name "${name}"`, node);
    }
  }

  private member(expr: Node<"member">): Compiled {
    const name = expr.property;
    if (expr.object.kind === "identifier" && expr.object.name === "source") {
      // source.X reads the event directly instead of building the whole record.
      this.eventField("source", expr.object);
      const read = Object.hasOwn(sourceFields, name) ? sourceFields[name] : undefined;
      if (read === undefined) {
        throw new ExpressionError("unknown-name", `unknown field "${name}" of source`, expr);
      }
      return dynamic((ctx) => read(ctx.event.source));
    }
    const object = this.compile(expr.object);
    const objectFn = object.fn;
    return combine([object], (ctx) => {
      const o = objectFn(ctx);
      if (o === null || o instanceof JsonNull) return null;
      if (isRecord(o)) return getField(o, name);
      return typeError(`${typeOf(o)} has no fields; ${name} cannot be read from it`, expr);
    });
  }

  private index(expr: Node<"index">): Compiled {
    const object = this.compile(expr.object);
    const index = this.compile(expr.index);
    const objectFn = object.fn;
    const indexFn = index.fn;
    return combine([object, index], (ctx) => {
      const o = objectFn(ctx);
      if (o === null || o instanceof JsonNull) return null;
      const i = indexFn(ctx);
      if (i === null) return null;
      if (Array.isArray(o)) {
        if (typeof i === "bigint") return null;
        if (typeof i !== "number" || !Number.isSafeInteger(i)) typeError(`a list index must be an integer, found ${typeOf(i)}`, expr.index);
        // Negative indexes count from the end: list[-1] is the last item.
        const at = i < 0 ? o.length + i : i;
        return at >= 0 && at < o.length ? o[at]! : null;
      }
      if (isRecord(o)) {
        if (typeof i !== "string") typeError(`a record index must be a string, found ${typeOf(i)}`, expr.index);
        return getField(o, i);
      }
      return typeError(`cannot index ${typeOf(o)}`, expr.object);
    });
  }

  private unary(expr: Node<"unary">): Compiled {
    const operand = this.compile(expr.operand);
    const fn = operand.fn;
    switch (expr.operator) {
      case "-":
        return combine([operand], (ctx) => {
          const v = fn(ctx);
          if (v === null) return null;
          return isNumeric(v) ? negate(v) : cannotApply("-", expr, v);
        });
      case "not":
        return combine([operand], (ctx) => {
          const v = fn(ctx);
          if (v === null) return null;
          return typeof v === "boolean" ? !v : cannotApply("not", expr, v);
        });
      default: {
        const unreachable: never = expr.operator;
        return unreachable;
      }
    }
  }

  private binary(expr: Node<"binary">): Compiled {
    const left = this.compile(expr.left);
    const right = this.compile(expr.right);
    const l = left.fn;
    const r = right.fn;
    const op = expr.operator;
    // Errors point at the whole binary node: the plan has no operator position of its own.
    const node: PlanExpr = expr;
    const children = [left, right];
    switch (op) {
      case "??":
        return combine(children, (ctx) => {
          const v = l(ctx);
          return v !== null ? v : r(ctx);
        });
      case "and":
        return combine(children, (ctx) => {
          const a = requireBoolean(l(ctx), op, node);
          if (a === false) return false;
          const b = requireBoolean(r(ctx), op, node);
          if (b === false) return false;
          return a === null || b === null ? null : true;
        });
      case "or":
        return combine(children, (ctx) => {
          const a = requireBoolean(l(ctx), op, node);
          if (a === true) return true;
          const b = requireBoolean(r(ctx), op, node);
          if (b === true) return true;
          return a === null || b === null ? null : false;
        });
      case "==":
        return combine(children, (ctx) => valuesEqual(l(ctx), r(ctx)));
      case "!=":
        return combine(children, (ctx) => !valuesEqual(l(ctx), r(ctx)));
      case "<":
        return combine(children, (ctx) => {
          const c = orderOf(l(ctx), r(ctx), op, node);
          return c === null ? null : c < 0;
        });
      case "<=":
        return combine(children, (ctx) => {
          const c = orderOf(l(ctx), r(ctx), op, node);
          return c === null ? null : c <= 0;
        });
      case ">":
        return combine(children, (ctx) => {
          const c = orderOf(l(ctx), r(ctx), op, node);
          return c === null ? null : c > 0;
        });
      case ">=":
        return combine(children, (ctx) => {
          const c = orderOf(l(ctx), r(ctx), op, node);
          return c === null ? null : c >= 0;
        });
      case "in": {
        // A constant list is read in place rather than copied for every event.
        const haystackFn: CompiledExpr = right.constant ? () => right.value ?? null : r;
        return combine(children, (ctx) => {
          const needle = l(ctx);
          const haystack = haystackFn(ctx);
          if (haystack === null) return null;
          if (Array.isArray(haystack)) {
            for (const item of haystack) if (valuesEqual(needle, item)) return true;
            return false;
          }
          if (typeof haystack === "string") {
            if (needle === null) return null;
            if (typeof needle === "string") return haystack.includes(needle);
          }
          return cannotApply(op, node, needle, haystack);
        });
      }
      case "matches":
        return this.matches(left, right, node);
      case "+":
        return combine(children, (ctx) => {
          const a = l(ctx);
          const b = r(ctx);
          if (a === null || b === null) return null;
          if (typeof a === "string" && typeof b === "string") return a + b;
          if (isNumeric(a) && isNumeric(b)) return arithmetic(op, a, b, node);
          return cannotApply(op, node, a, b);
        });
      case "-":
      case "*":
      case "/":
      case "%":
        return combine(children, (ctx) => {
          const a = l(ctx);
          const b = r(ctx);
          if (a === null || b === null) return null;
          if (isNumeric(a) && isNumeric(b)) return arithmetic(op, a, b, node);
          return cannotApply(op, node, a, b);
        });
      default: {
        const unreachable: never = op;
        return unreachable;
      }
    }
  }

  private matches(left: Compiled, right: Compiled, node: PlanExpr): Compiled {
    const l = left.fn;
    const test = (subject: Value, regex: RegExp): Value => {
      if (subject === null) return null;
      return typeof subject === "string" ? regex.test(subject) : cannotApply("matches", node, subject, "");
    };
    if (right.constant && typeof right.value === "string") {
      // The usual case, a literal pattern: compiled here, once.
      const regex = compileRegex(right.value, node);
      return combine([left], (ctx) => test(l(ctx), regex));
    }
    const r = right.fn;
    let cachedPattern: string | undefined;
    let cachedRegex: RegExp | undefined;
    return combine([left, right], (ctx) => {
      const subject = l(ctx);
      const pattern = r(ctx);
      if (pattern === null) return null;
      if (typeof pattern !== "string") return cannotApply("matches", node, subject, pattern);
      if (pattern !== cachedPattern || cachedRegex === undefined) {
        cachedRegex = compileRegex(pattern, node);
        cachedPattern = pattern;
      }
      return test(subject, cachedRegex);
    });
  }

  private call(expr: Node<"call">): Compiled {
    const name = expr.callee;
    const signature = FUNCTIONS.get(name);
    const impl = BUILTINS.get(name);
    if (signature === undefined || (impl === undefined && name !== "env")) {
      throw new ExpressionError("unknown-function", `unknown function "${name}"`, expr);
    }
    const n = expr.args.length;
    if (n < signature.minArgs || n > signature.maxArgs) {
      const expected =
        signature.minArgs === signature.maxArgs
          ? `${signature.minArgs}`
          : signature.maxArgs === Infinity
            ? `at least ${signature.minArgs}`
            : `${signature.minArgs} to ${signature.maxArgs}`;
      throw new ExpressionError("arity", `${name}() takes ${expected} argument${/(^| )1$/.test(expected) ? "" : "s"}, found ${n}`, expr);
    }
    const site: CallSite = { name, node: expr, args: expr.args };
    if (name === "env") return this.env(expr, site);
    const args = expr.args.map((arg) => this.compile(arg));
    const fns = args.map((a) => a.fn);
    if (name === "coalesce") {
      // Lazy: arguments after the first non-null one are not evaluated.
      return combine(args, (ctx) => {
        for (const fn of fns) {
          const v = fn(ctx);
          if (v !== null) return v;
        }
        return null;
      });
    }
    const run = impl!;
    const propagatesNull = signature.nullTolerant !== true;
    const fn: CompiledExpr =
      n === 1
        ? (ctx) => {
            const v = fns[0]!(ctx);
            return v === null && propagatesNull ? null : run([v], site);
          }
        : (ctx) => {
            const values: Value[] = new Array(n);
            for (let i = 0; i < n; i++) {
              const v = fns[i]!(ctx);
              if (v === null && propagatesNull) return null;
              values[i] = v;
            }
            return run(values, site);
          };
    return signature.volatile === true ? dynamic(fn) : combine(args, fn);
  }

  /** env() is read here, at compile time: the plan keeps it symbolic, the pipeline reads it once at start. */
  private env(expr: Node<"call">, site: CallSite): Compiled {
    const args = expr.args.map((arg) => this.compile(arg));
    args.forEach((arg, i) => {
      if (!arg.constant) {
        throw new ExpressionError("not-at-start", "env() arguments must be fixed at start: they cannot use the change event", expr.args[i]!);
      }
    });
    const name = args[0]!.value ?? null;
    if (typeof name !== "string") {
      throw new ExpressionError("type", `argument 1 of env() must be a string, found ${typeOf(name)}`, site.args[0]!);
    }
    const read = this.scope.env ?? ((variable: string) => process.env[variable]);
    const fallback = args.length > 1 ? { value: args[1]!.value ?? null } : undefined;
    return constant(envValue(name, read(name), fallback, site));
  }
}
