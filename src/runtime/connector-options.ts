/**
 * Reading a connector's resolved options. The checker has validated constant options against
 * the connector's JSON Schema, but an option computed at start (`env("ROWS", 1000)`) is only
 * known now, so a connector reads its options through these, which check the kind and give a
 * `ConnectorError` naming the option instead of a TypeError somewhere deeper.
 *
 * Superseded: options are now read once, against the spec, when they are resolved, and a
 * connector takes them typed with `optionsOf(spec, context.options)` (connectors/options.ts).
 * No connector here uses these any more; they stay only until the connectors being written
 * beside this change have moved over, and then go.
 */
import { Decimal } from "../model/decimal.js";
import { typeOf, type Value } from "../model/value.js";
import { ConnectorError } from "./contracts.js";

export type Options = Readonly<Record<string, Value>>;

function invalid(connector: string, name: string, expected: string, found: Value): never {
  throw new ConnectorError(`${connector}: option ${name} must be ${expected}, found ${typeOf(found)}`, false);
}

export function stringOption(options: Options, connector: string, name: string): string;
export function stringOption(options: Options, connector: string, name: string, fallback: string | undefined): string | undefined;
export function stringOption(options: Options, connector: string, name: string, fallback?: string): string | undefined {
  const value = Object.hasOwn(options, name) ? options[name]! : null;
  if (value === null) {
    if (arguments.length < 4) throw new ConnectorError(`${connector}: option ${name} is required`, false);
    return fallback;
  }
  return typeof value === "string" ? value : invalid(connector, name, "a string", value);
}

/** An integer option as a number; `min` and `max` bound it (inclusive). */
export function integerOption(options: Options, connector: string, name: string, fallback: number, min = -Infinity, max = Infinity): number {
  const value = Object.hasOwn(options, name) ? options[name]! : null;
  if (value === null) return fallback;
  let n: number;
  if (typeof value === "number" && Number.isSafeInteger(value)) n = value;
  else if (typeof value === "bigint") n = Number(value);
  else if (value instanceof Decimal && value.isInteger()) n = value.toNumber();
  else return invalid(connector, name, "an integer", value);
  if (n < min || n > max) {
    const range = max === Infinity ? `at least ${min}` : min === -Infinity ? `at most ${max}` : `between ${min} and ${max}`;
    throw new ConnectorError(`${connector}: option ${name} must be ${range}, found ${n}`, false);
  }
  return n;
}

/** An integer option kept exact (a seed may exceed 2^53). */
export function bigIntegerOption(options: Options, connector: string, name: string, fallback: bigint): bigint {
  const value = Object.hasOwn(options, name) ? options[name]! : null;
  if (value === null) return fallback;
  if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === "bigint") return value;
  if (value instanceof Decimal && value.isInteger()) return value.toBigInt();
  return invalid(connector, name, "an integer", value);
}
