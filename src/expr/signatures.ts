/**
 * The static types of the expression language: what the checker reasons with and the runtime
 * agrees to. Pure data and pure functions, no runtime imports, so the checker can load it
 * without the evaluator.
 *
 * Every static type admits null: a column of type integer may be null in any event, so
 * nullness is not tracked; a function or operator given a null at run time yields null (see
 * `compile.ts`). "number" is a numeric value of a kind not known statically, "any" a value of
 * any kind, known only at run time; the checker accepts both wherever something more precise
 * would be accepted and leaves the last word to the runtime, which raises an ExpressionError.
 *
 * Numeric kinds combine as in `numeric.ts`: integer op integer is integer (but `/` gives a
 * decimal), a decimal with an integer or a decimal is decimal, anything with a float is float.
 */

import type { BinaryOperator, UnaryOperator } from "./operators.js";

export type StaticType =
  | "any"
  | "null"
  | "boolean"
  | "integer"
  | "float"
  | "decimal"
  | "number"
  | "string"
  | "timestamp"
  | "bytes"
  | "list"
  | "record";

export function isNumericType(type: StaticType): boolean {
  return type === "integer" || type === "float" || type === "decimal" || type === "number";
}

/** Flags the language compiles every `matches` regex with, so the checker validates it the same way. */
export const REGEX_FLAGS = "u";

/**
 * Whether a value of type `actual` may be given where `accepted` types are allowed. Unknown
 * types ("any", "number" where one numeric kind is wanted) and null are accepted: the runtime
 * decides.
 */
export function isAssignable(actual: StaticType, accepted: readonly StaticType[]): boolean {
  if (actual === "any" || actual === "null" || accepted.includes("any") || accepted.includes(actual)) return true;
  if (isNumericType(actual)) {
    if (accepted.includes("number")) return true;
    if (actual === "number") return accepted.some(isNumericType);
  }
  return false;
}

/** The type of a value that is either an `a` or a `b` (e.g. the two sides of `??`). */
export function joinTypes(a: StaticType, b: StaticType): StaticType {
  if (a === b || b === "null") return a;
  if (a === "null") return b;
  if (a === "any" || b === "any") return "any";
  if (isNumericType(a) && isNumericType(b)) return "number";
  return "any";
}

/** The numeric kind of `left op right` for `+ - * / %` on numeric operand types. */
export function arithmeticResultType(operator: "+" | "-" | "*" | "/" | "%", left: StaticType, right: StaticType): StaticType {
  if (left === "float" || right === "float") return "float";
  if (left === "number" || right === "number" || left === "any" || right === "any") return "number";
  if (left === "decimal" || right === "decimal") return "decimal";
  // integer op integer
  return operator === "/" ? "decimal" : "integer";
}

// ---------------------------------------------------------------- names an expression sees

/** The names an expression sees in one change event, with their types (LANGUAGE.md). */
export const EVENT_NAMES: Readonly<Record<string, StaticType>> = {
  op: "string",
  before: "record",
  after: "record",
  row: "record",
  key: "record",
  table: "string",
  target: "string",
  source: "record",
};

/** The fields of `source`. `position` is the position's token, `ts` the commit time. */
export const SOURCE_FIELDS: Readonly<Record<string, StaticType>> = {
  connector: "string",
  db: "string",
  schema: "string",
  table: "string",
  position: "string",
  ts: "timestamp",
  txid: "string",
};

// ---------------------------------------------------------------- functions

export interface FunctionSignature {
  readonly name: string;
  readonly minArgs: number;
  /** Infinity for a variadic function. */
  readonly maxArgs: number;
  /** The types each argument may have; a variadic function's last entry covers the rest. */
  readonly params: readonly (readonly StaticType[])[];
  /** The result type for the given argument types (after null propagation, see `callResultType`). */
  readonly result: (args: readonly StaticType[]) => StaticType;
  /** A null argument does not make the result null (coalesce, concat, json). */
  readonly nullTolerant?: true;
  /** Allowed only where a value is fixed at start: option blocks and `let` (env). */
  readonly startOnly?: true;
  /** Gives a different value each call (now): never folded into a constant. */
  readonly volatile?: true;
  readonly summary: string;
}

const STRING: readonly StaticType[] = ["string"];
const NUMBER: readonly StaticType[] = ["number"];
const INTEGER: readonly StaticType[] = ["integer"];
const ANY: readonly StaticType[] = ["any"];

/** A numeric result of the same kind as the first argument. */
function sameNumericKind(args: readonly StaticType[]): StaticType {
  const first = args[0] ?? "any";
  return isNumericType(first) ? first : "number";
}

function joinAll(args: readonly StaticType[]): StaticType {
  return args.reduce<StaticType>((acc, t) => joinTypes(acc, t), "null");
}

const signatureList: readonly FunctionSignature[] = [
  { name: "lower", minArgs: 1, maxArgs: 1, params: [STRING], result: () => "string", summary: "the string in lower case" },
  { name: "upper", minArgs: 1, maxArgs: 1, params: [STRING], result: () => "string", summary: "the string in upper case" },
  { name: "trim", minArgs: 1, maxArgs: 1, params: [STRING], result: () => "string", summary: "the string without leading and trailing white space" },
  { name: "length", minArgs: 1, maxArgs: 1, params: [["string", "list", "bytes"]], result: () => "integer", summary: "code points of a string, items of a list, bytes of binary" },
  { name: "substr", minArgs: 2, maxArgs: 3, params: [STRING, INTEGER, INTEGER], result: () => "string", summary: "code points from start (0-based; negative counts from the end), count of them or to the end" },
  { name: "replace", minArgs: 3, maxArgs: 3, params: [STRING, STRING, STRING], result: () => "string", summary: "every occurrence of from replaced by to (plain text, not a regex)" },
  { name: "concat", minArgs: 1, maxArgs: Infinity, params: [ANY], result: () => "string", nullTolerant: true, summary: "string(x) of each argument joined; nulls skipped" },
  { name: "coalesce", minArgs: 1, maxArgs: Infinity, params: [ANY], result: joinAll, nullTolerant: true, summary: "the first argument that is not null" },
  { name: "string", minArgs: 1, maxArgs: 1, params: [ANY], result: () => "string", summary: "the value as text" },
  { name: "int", minArgs: 1, maxArgs: 1, params: [["number", "string", "boolean"]], result: () => "integer", summary: "an integer: numbers truncated toward zero, numeric text parsed" },
  { name: "float", minArgs: 1, maxArgs: 1, params: [["number", "string", "boolean"]], result: () => "float", summary: "the nearest double (may lose digits)" },
  { name: "round", minArgs: 1, maxArgs: 2, params: [NUMBER, INTEGER], result: sameNumericKind, summary: "rounded half away from zero to digits after the point (default 0)" },
  { name: "floor", minArgs: 1, maxArgs: 1, params: [NUMBER], result: sameNumericKind, summary: "the largest integral value not above x" },
  { name: "ceil", minArgs: 1, maxArgs: 1, params: [NUMBER], result: sameNumericKind, summary: "the smallest integral value not below x" },
  { name: "abs", minArgs: 1, maxArgs: 1, params: [NUMBER], result: sameNumericKind, summary: "the absolute value, of the same kind" },
  { name: "now", minArgs: 0, maxArgs: 0, params: [], result: () => "timestamp", volatile: true, summary: "the current time, when the expression runs" },
  { name: "hash", minArgs: 1, maxArgs: 1, params: [ANY], result: () => "string", summary: "hex SHA-256 of json(x)" },
  { name: "json", minArgs: 1, maxArgs: 1, params: [ANY], result: () => "string", nullTolerant: true, summary: "canonical JSON text of the value (sorted fields)" },
  { name: "parse_json", minArgs: 1, maxArgs: 1, params: [STRING], result: () => "any", summary: "the value JSON text holds (big integers and decimals exact)" },
  {
    name: "env",
    minArgs: 1,
    maxArgs: 2,
    params: [STRING, ANY],
    // Set, the variable's text is converted to the default's type, so the type is stable.
    result: (args) => (args.length < 2 || args[1] === "null" ? "string" : args[1]!),
    startOnly: true,
    summary: "an environment variable at start; unset without a default is an error",
  },
];

export const FUNCTIONS: ReadonlyMap<string, FunctionSignature> = new Map(signatureList.map((s) => [s.name, s]));

/** The types argument `index` (0-based) of `signature` may have. */
export function parameterTypes(signature: FunctionSignature, index: number): readonly StaticType[] {
  return signature.params[Math.min(index, signature.params.length - 1)] ?? ANY;
}

/** A call's static result type; a null-literal argument makes it null unless the function tolerates nulls. */
export function callResultType(signature: FunctionSignature, args: readonly StaticType[]): StaticType {
  if (!signature.nullTolerant && args.includes("null")) return "null";
  return signature.result(args);
}

// ---------------------------------------------------------------- operators

export type OperatorResult = { readonly type: StaticType } | { readonly error: string };

function describeType(type: StaticType): string {
  return type === "any" ? "a value" : type;
}

function cannot(operator: string, left: StaticType, right?: StaticType): OperatorResult {
  return right === undefined
    ? { error: `operator "${operator}" cannot apply to ${describeType(left)}` }
    : { error: `operator "${operator}" cannot apply to ${describeType(left)} and ${describeType(right)}` };
}

const ORDERED_TYPES: readonly StaticType[] = ["string", "timestamp", "boolean", "bytes"];

/** The type of `left operator right`, or why it cannot apply. */
export function binaryResultType(
  operator: BinaryOperator,
  left: StaticType,
  right: StaticType,
): OperatorResult {
  const unknown = (t: StaticType): boolean => t === "any" || t === "null";
  switch (operator) {
    case "??":
      return { type: left === "null" ? right : joinTypes(left, right) };
    case "and":
    case "or":
      return (unknown(left) || left === "boolean") && (unknown(right) || right === "boolean")
        ? { type: "boolean" }
        : cannot(operator, left, right);
    case "==":
    case "!=":
      return { type: "boolean" };
    case "<":
    case "<=":
    case ">":
    case ">=": {
      if (unknown(left) || unknown(right)) {
        const known = unknown(left) ? right : left;
        return unknown(known) || isNumericType(known) || ORDERED_TYPES.includes(known) ? { type: "boolean" } : cannot(operator, left, right);
      }
      if (isNumericType(left) && isNumericType(right)) return { type: "boolean" };
      return left === right && ORDERED_TYPES.includes(left) ? { type: "boolean" } : cannot(operator, left, right);
    }
    case "in":
      if (unknown(right) || right === "list") return { type: "boolean" };
      if (right === "string" && (unknown(left) || left === "string")) return { type: "boolean" };
      return cannot(operator, left, right);
    case "matches":
      return (unknown(left) || left === "string") && (unknown(right) || right === "string")
        ? { type: "boolean" }
        : cannot(operator, left, right);
    case "+":
      if (left === "string" || right === "string") {
        const other = left === "string" ? right : left;
        return unknown(other) || other === "string" ? { type: "string" } : cannot(operator, left, right);
      }
      if (left === "any" && right === "any") return { type: "any" };
      if (unknown(left) || unknown(right)) {
        const known = unknown(left) ? right : left;
        if (known === "null") return { type: "null" };
        if (known === "any") return { type: "any" };
        return isNumericType(known) ? { type: left === "any" || right === "any" ? "number" : known } : cannot(operator, left, right);
      }
      return isNumericType(left) && isNumericType(right)
        ? { type: arithmeticResultType(operator, left, right) }
        : cannot(operator, left, right);
    case "-":
    case "*":
    case "/":
    case "%": {
      const ok = (t: StaticType): boolean => unknown(t) || isNumericType(t);
      if (!ok(left) || !ok(right)) return cannot(operator, left, right);
      if (left === "null" || right === "null") return { type: "null" };
      return { type: arithmeticResultType(operator, left, right) };
    }
    default: {
      const unreachable: never = operator;
      return unreachable;
    }
  }
}

/** The type of `operator operand`, or why it cannot apply. */
export function unaryResultType(operator: UnaryOperator, operand: StaticType): OperatorResult {
  switch (operator) {
    case "-":
      if (operand === "any") return { type: "number" };
      return operand === "null" || isNumericType(operand) ? { type: operand } : cannot(operator, operand);
    case "not":
      return operand === "any" || operand === "null" || operand === "boolean" ? { type: "boolean" } : cannot(operator, operand);
    default: {
      const unreachable: never = operator;
      return unreachable;
    }
  }
}
