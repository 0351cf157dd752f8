/**
 * What the compiler can know of a value without running anything: a constant (literals,
 * lists and records of constants, lets bound to constants), or nothing (it reads `env()`,
 * the change event, or calls a function). Constants are validated against connector schemas
 * and inlined into the plan; everything else stays an expression, evaluated by the runtime
 * at start or per event. `env()` is therefore never resolved at compile time.
 */
import type { Expr } from "../ast/nodes.js";
import type { JsonValue } from "../model/json-value.js";

export type StaticValue = { readonly known: true; readonly value: JsonValue } | { readonly known: false };

const unknown: StaticValue = { known: false };

/** A number literal as JSON: exact integers within 2^53 and plain decimals become numbers. */
export function numberLiteralValue(text: string, fractional: boolean): JsonValue | undefined {
  if (!fractional) {
    const big = BigInt(text);
    return big <= BigInt(Number.MAX_SAFE_INTEGER) && big >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(big) : undefined;
  }
  const value = Number(text);
  // Only a fraction that survives the trip through a double is a constant option value.
  return Number.isFinite(value) && String(value) === text.replace(/^(-?)0+(\d)/, "$1$2") ? value : undefined;
}

export function staticValue(expr: Expr, lets: (name: string) => StaticValue | undefined): StaticValue {
  switch (expr.kind) {
    case "number": {
      const value = numberLiteralValue(expr.text, expr.fractional);
      return value === undefined ? unknown : { known: true, value };
    }
    case "string":
      return { known: true, value: expr.value };
    case "boolean":
      return { known: true, value: expr.value };
    case "null":
      return { known: true, value: null };
    case "template": {
      let text = "";
      for (const part of expr.parts) {
        if (typeof part === "string") {
          text += part;
          continue;
        }
        const inner = staticValue(part, lets);
        if (!inner.known || (typeof inner.value === "object" && inner.value !== null)) return unknown;
        text += inner.value === null ? "" : String(inner.value);
      }
      return { known: true, value: text };
    }
    case "list": {
      const items: JsonValue[] = [];
      for (const item of expr.items) {
        const inner = staticValue(item, lets);
        if (!inner.known) return unknown;
        items.push(inner.value);
      }
      return { known: true, value: items };
    }
    case "record": {
      const record: Record<string, JsonValue> = {};
      for (const entry of expr.entries) {
        if (entry.kind === "drop") {
          delete record[entry.name.text];
          continue;
        }
        const inner = staticValue(entry.value, lets);
        if (!inner.known) return unknown;
        if (entry.kind === "field") record[entry.name.text] = inner.value;
        else if (typeof inner.value === "object" && inner.value !== null && !Array.isArray(inner.value)) Object.assign(record, inner.value);
        else return unknown;
      }
      return { known: true, value: record };
    }
    case "identifier":
      return lets(expr.name) ?? unknown;
    case "binary": {
      if (expr.operator !== "+") return unknown;
      const left = staticValue(expr.left, lets);
      const right = staticValue(expr.right, lets);
      if (left.known && right.known && typeof left.value === "string" && typeof right.value === "string") {
        return { known: true, value: left.value + right.value };
      }
      return unknown;
    }
    case "member":
    case "index":
    case "unary":
    case "isNull":
    case "call":
      return unknown;
    default: {
      const never: never = expr;
      throw new Error(`unknown expression ${JSON.stringify(never)}`);
    }
  }
}
