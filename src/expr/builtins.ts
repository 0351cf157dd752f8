/**
 * The built-in functions, one implementation each, keyed by name like `signatures.ts`.
 *
 * An implementation receives argument values already evaluated; null propagation is not its
 * business: `compile.ts` returns null before calling a function that is not `nullTolerant`
 * when an argument is null, and evaluates `coalesce` lazily and `env` at compile time itself.
 * So each implementation only checks kinds and raises an ExpressionError at the argument
 * when one is wrong.
 *
 * `stringOf` is the language's one conversion to text, shared by `string()`, `concat()` and
 * string interpolation:
 *   boolean   "true" / "false"        integer  all its digits
 *   float     shortest round-trip text ("0.1", "1e+21", "NaN", "Infinity")
 *   decimal   plain notation with its scale ("12.30", never an exponent)
 *   string    itself                   timestamp ISO 8601 with microseconds ("...00.123456Z")
 *   bytes     standard base64 (as in the JSON format)
 *   list, record  canonical JSON (as json())
 *   null      "" (string(null) itself is null; interpolation and concat print nothing)
 */
import { createHash } from "node:crypto";
import { Decimal, MAX_DECIMAL_SCALE } from "../model/decimal.js";
import { canonicalJson, decodeJson, jsonDocument } from "../model/json.js";
import { Timestamp } from "../model/timestamp.js";
import { isIntegerValue, isNumeric, isRecord, normalizeInteger, typeOf, type NumericValue, type Value } from "../model/value.js";
import type { PlanExpr } from "../plan/types.js";
import { ExpressionError } from "./errors.js";
import { toFloat } from "./numeric.js";

/** Where a call is, for errors: the call and each argument. */
export interface CallSite {
  readonly name: string;
  readonly node: PlanExpr;
  readonly args: readonly PlanExpr[];
}

export type BuiltinImpl = (args: readonly Value[], call: CallSite) => Value;

export function stringOf(value: Value): string {
  switch (typeof value) {
    case "string":
      return value;
    case "boolean":
      return value ? "true" : "false";
    case "number":
      return String(value);
    case "bigint":
      return value.toString();
    default:
      if (value === null) return "";
      if (value instanceof Decimal || value instanceof Timestamp) return value.toString();
      if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64");
      return canonicalJson(value);
  }
}

function wrongArgument(call: CallSite, index: number, expected: string, found: Value): never {
  throw new ExpressionError(
    "type",
    `argument ${index + 1} of ${call.name}() must be ${expected}, found ${typeOf(found)}`,
    call.args[index] ?? call.node,
  );
}

function invalid(call: CallSite, index: number, message: string): never {
  throw new ExpressionError("invalid-value", `${call.name}(): ${message}`, call.args[index] ?? call.node);
}

function stringArg(args: readonly Value[], index: number, call: CallSite): string {
  const v = args[index]!;
  return typeof v === "string" ? v : wrongArgument(call, index, "a string", v);
}

function numericArg(args: readonly Value[], index: number, call: CallSite): NumericValue {
  const v = args[index]!;
  return isNumeric(v) ? v : wrongArgument(call, index, "a number", v);
}

/** An integer argument as a JS number, clamped to ±2^53 (beyond that every count is out of range). */
function integerArg(args: readonly Value[], index: number, call: CallSite): number {
  const v = args[index]!;
  if (typeof v === "number" && Number.isSafeInteger(v)) return v;
  if (typeof v === "bigint") return v < 0n ? -Number.MAX_SAFE_INTEGER : Number.MAX_SAFE_INTEGER;
  return wrongArgument(call, index, "an integer", v);
}

// Strings without surrogates index by code unit, which is the common and fast case.
const surrogate = /[\uD800-\uDFFF]/;

function codePointLength(s: string): number {
  if (!surrogate.test(s)) return s.length;
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function substr(s: string, start: number, count: number | undefined): string {
  const points: readonly string[] | string = surrogate.test(s) ? Array.from(s) : s;
  const length = points.length;
  let from = start < 0 ? Math.max(0, length + start) : Math.min(start, length);
  const to = count === undefined ? length : Math.min(length, from + count);
  if (from >= to) return "";
  return typeof points === "string" ? points.slice(from, to) : points.slice(from, to).join("");
}

const integerText = /^[+-]?\d+$/;

/** Integer from text or number, truncated toward zero; null when the text is not a number. */
function truncateToInteger(value: NumericValue): number | bigint | undefined {
  if (typeof value === "bigint") return value;
  if (value instanceof Decimal) return normalizeInteger(value.toBigInt());
  if (Number.isSafeInteger(value)) return value;
  if (!Number.isFinite(value)) return undefined;
  return normalizeInteger(BigInt(Math.trunc(value)));
}

function parseNumberText(text: string): NumericValue | undefined {
  const t = text.trim();
  if (integerText.test(t)) return normalizeInteger(BigInt(t));
  if (Decimal.isDecimalText(t)) {
    try {
      return new Decimal(t);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

const specialFloats: Readonly<Record<string, number>> = {
  nan: NaN,
  infinity: Infinity,
  "+infinity": Infinity,
  "-infinity": -Infinity,
  inf: Infinity,
  "+inf": Infinity,
  "-inf": -Infinity,
};

function roundInteger(value: number | bigint, digits: number): number | bigint {
  if (digits >= 0) return value;
  const unit = 10n ** BigInt(Math.min(-digits, 400));
  const x = BigInt(value);
  const magnitude = x < 0n ? -x : x;
  const rounded = ((magnitude + unit / 2n) / unit) * unit;
  return normalizeInteger(x < 0n ? -rounded : rounded);
}

function decimalOf(value: number): Decimal {
  return new Decimal(value);
}

function round(x: NumericValue, digits: number): NumericValue {
  if (isIntegerValue(x)) return roundInteger(x, digits);
  const places = Math.min(digits, MAX_DECIMAL_SCALE);
  if (x instanceof Decimal) return x.round(places, "half-up");
  if (!Number.isFinite(x)) return x;
  // Rounds the shortest decimal text of the double, which is the number the user sees:
  // round(2.675, 2) is 2.68, although the double nearest 2.675 is slightly below it.
  return decimalOf(x).round(places, "half-up").toNumber();
}

function floorOrCeil(x: NumericValue, mode: "floor" | "ceil"): NumericValue {
  if (isIntegerValue(x)) return x;
  if (x instanceof Decimal) return x.round(0, mode);
  return mode === "floor" ? Math.floor(x) : Math.ceil(x);
}

function abs(x: NumericValue): NumericValue {
  if (typeof x === "number") return Math.abs(x);
  if (typeof x === "bigint") return normalizeInteger(x < 0n ? -x : x);
  return x.abs();
}

export const BUILTINS: ReadonlyMap<string, BuiltinImpl> = new Map<string, BuiltinImpl>([
  ["lower", (args, call) => stringArg(args, 0, call).toLowerCase()],
  ["upper", (args, call) => stringArg(args, 0, call).toUpperCase()],
  ["trim", (args, call) => stringArg(args, 0, call).trim()],
  [
    "length",
    (args, call) => {
      const v = args[0]!;
      if (typeof v === "string") return codePointLength(v);
      if (Array.isArray(v)) return v.length;
      if (v instanceof Uint8Array) return v.length;
      return wrongArgument(call, 0, "a string, a list or bytes", v);
    },
  ],
  [
    "substr",
    (args, call) => {
      const s = stringArg(args, 0, call);
      const start = integerArg(args, 1, call);
      const count = args.length > 2 ? integerArg(args, 2, call) : undefined;
      if (count !== undefined && count < 0) invalid(call, 2, `count must not be negative, found ${count}`);
      return substr(s, start, count);
    },
  ],
  [
    "replace",
    (args, call) => {
      const s = stringArg(args, 0, call);
      const from = stringArg(args, 1, call);
      const to = stringArg(args, 2, call);
      // split/join, not String.replaceAll: a "$&" in `to` must stay literal text.
      return from === "" ? s : s.split(from).join(to);
    },
  ],
  [
    "concat",
    (args) => {
      let out = "";
      for (const v of args) if (v !== null) out += stringOf(v);
      return out;
    },
  ],
  [
    "coalesce",
    (args) => {
      for (const v of args) if (v !== null) return v;
      return null;
    },
  ],
  ["string", (args) => stringOf(args[0]!)],
  [
    "int",
    (args, call) => {
      const v = args[0]!;
      if (typeof v === "boolean") return v ? 1 : 0;
      if (typeof v === "string") {
        const parsed = parseNumberText(v);
        if (parsed === undefined) invalid(call, 0, `cannot read ${JSON.stringify(v.slice(0, 64))} as a number`);
        return truncateToInteger(parsed)!;
      }
      const n = numericArg(args, 0, call);
      const result = truncateToInteger(n);
      return result ?? invalid(call, 0, `${n} has no integer value`);
    },
  ],
  [
    "float",
    (args, call) => {
      const v = args[0]!;
      if (typeof v === "boolean") return v ? 1 : 0;
      if (typeof v === "string") {
        const t = v.trim();
        const special = specialFloats[t.toLowerCase()];
        if (special !== undefined) return special;
        if (!Decimal.isDecimalText(t)) invalid(call, 0, `cannot read ${JSON.stringify(v.slice(0, 64))} as a number`);
        return Number(t);
      }
      return toFloat(numericArg(args, 0, call));
    },
  ],
  ["round", (args, call) => round(numericArg(args, 0, call), args.length > 1 ? integerArg(args, 1, call) : 0)],
  ["floor", (args, call) => floorOrCeil(numericArg(args, 0, call), "floor")],
  ["ceil", (args, call) => floorOrCeil(numericArg(args, 0, call), "ceil")],
  ["abs", (args, call) => abs(numericArg(args, 0, call))],
  ["now", () => Timestamp.now()],
  ["hash", (args) => createHash("sha256").update(canonicalJson(args[0]!), "utf8").digest("hex")],
  ["json", (args) => canonicalJson(args[0]!)],
  [
    "parse_json",
    (args, call) => {
      const s = stringArg(args, 0, call);
      try {
        return decodeJson(s);
      } catch (error) {
        return invalid(call, 0, (error as Error).message);
      }
    },
  ],
]);

/**
 * The value of `env(name, default)` once the variable has been looked up. Set, its text is
 * converted to the default's type (so `env("PORT", 5432)` is an integer either way): an
 * integer, float or decimal is parsed as a number, a boolean from true/false/1/0, a list or
 * record as JSON, a timestamp as ISO 8601, bytes as base64; with no default or a string or
 * null default, the text itself. Unset, it is the default; with no default, an error.
 */
export function envValue(name: string, text: string | undefined, fallback: { value: Value } | undefined, call: CallSite): Value {
  if (text === undefined) {
    if (fallback === undefined) {
      throw new ExpressionError("env-unset", `environment variable "${name}" is not set and env() has no default`, call.node);
    }
    return fallback.value;
  }
  const model = fallback?.value ?? null;
  const fail = (expected: string): never => {
    throw new ExpressionError(
      "invalid-value",
      `environment variable "${name}" must be ${expected} (like its default), found ${JSON.stringify(text.slice(0, 64))}`,
      call.args[1] ?? call.node,
    );
  };
  const t = text.trim();
  const kind = typeOf(model);
  switch (kind) {
    case "null":
    case "string":
      return text;
    case "integer":
      return integerText.test(t) ? normalizeInteger(BigInt(t)) : fail("an integer");
    case "float": {
      const special = specialFloats[t.toLowerCase()];
      if (special !== undefined) return special;
      return Decimal.isDecimalText(t) ? Number(t) : fail("a number");
    }
    case "decimal":
      try {
        return new Decimal(t);
      } catch {
        return fail("a decimal number");
      }
    case "boolean": {
      const lower = t.toLowerCase();
      if (lower === "true" || lower === "1") return true;
      if (lower === "false" || lower === "0") return false;
      return fail("true or false");
    }
    case "timestamp":
      try {
        return Timestamp.parse(t);
      } catch {
        return fail("an ISO 8601 timestamp");
      }
    case "bytes":
      return /^[A-Za-z0-9+/]*={0,2}$/.test(t) ? Buffer.from(t, "base64") : fail("base64");
    case "list":
    case "record": {
      let parsed: Value;
      try {
        parsed = decodeJson(t);
      } catch {
        return fail(`JSON (a ${kind})`);
      }
      return (kind === "list" ? Array.isArray(parsed) : isRecord(parsed)) ? parsed : fail(`a JSON ${kind}`);
    }
    case "json-null":
      // No literal is a JSON null, so no default has this type; a JSON document is the fit.
      try {
        return jsonDocument(decodeJson(t));
      } catch {
        return fail("JSON");
      }
    default: {
      const unreachable: never = kind;
      return unreachable;
    }
  }
}
