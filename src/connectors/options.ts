/**
 * A connector's options, read once. The checker validates constant options against the spec at
 * compile time; an option computed at start (`env("ROWS", "1000")`) is known only when the run
 * (or a tool) resolves it, so `readOptions` checks every start-time value against the same spec
 * then — kind, enum, bounds, pattern — fills the spec's defaults, and gives the connector plain
 * typed values (an integer as a number, or a bigint for a `big` one; a decimal option as a
 * number). `resolveStartValues` (runtime/start-values.ts) calls it for every source and sink,
 * so a run and every tool hand connectors the same options.
 *
 * A connector takes its typed view with `optionsOf(spec, context.options)`, which does not
 * read them again: the object `readOptions` returned is remembered. Only options that did not
 * come through it (a test or a tool that builds a context by hand) are read there, by the same
 * rules — so a connector never validates or defaults an option itself.
 */
import { Decimal } from "../model/decimal.js";
import { parseDuration } from "../model/duration.js";
import { isRecord, jsonToValue, typeOf, type Value } from "../model/value.js";
import { DtsError } from "../diagnostics/errors.js";
import { describeType, type ConnectorSpec, type OptionField, type OptionsOf } from "./spec.js";

type Options = Readonly<Record<string, Value>>;

/** The option objects `readOptions` made: already checked, given as they are. */
const read = new WeakSet<object>();

/**
 * The start-time options of `spec` from `values`: each checked, defaults filled, integers as
 * numbers. Per-event options are left out (they are functions elsewhere). `who` names the
 * connector in errors: `source shop`. Throws a DtsError DTS7001 (exit 1) naming the option.
 */
export function readOptions(spec: ConnectorSpec, values: Options, who: string): Options {
  const result: Record<string, Value> = {};
  for (const [name, field] of Object.entries(spec.options)) {
    if (field.timing === "event" && !Object.hasOwn(values, name)) continue;
    const given = Object.hasOwn(values, name) ? values[name]! : null;
    if (given === null) {
      if (field.default !== undefined) result[name] = convert(field, jsonToValue(field.default), name, who);
      else if (field.required) throw invalid(who, name, "is required");
      continue;
    }
    result[name] = convert(field, given, name, who);
  }
  // Names the spec does not have are the checker's to refuse; one here came from a caller
  // that bypassed it, and is passed on rather than dropped in silence.
  for (const [name, value] of Object.entries(values)) if (!Object.hasOwn(spec.options, name)) result[name] = value;
  read.add(result);
  return result;
}

/** The typed view of options `readOptions` made (or, for options built by hand, reads them now). */
export function optionsOf<S extends ConnectorSpec>(spec: S, options: Options, who = `${spec.name} ${spec.role}`): OptionsOf<S> {
  return (read.has(options) ? options : readOptions(spec, options, who)) as unknown as OptionsOf<S>;
}

/** Read options without one of them (the runner keeps `retry_for` for itself), still read. */
export function withoutOption(options: Options, name: string): Options {
  const { [name]: _dropped, ...rest } = options;
  if (read.has(options)) read.add(rest);
  return rest;
}

function convert(field: OptionField, value: Value, name: string, who: string): Value {
  const wrong = (): never => {
    throw invalid(who, name, `must be ${field.enum !== undefined ? `one of ${field.enum.map((e) => JSON.stringify(e)).join(", ")}` : describeType(field)}, found ${typeOf(value)}`);
  };
  switch (field.type) {
    case "string": {
      if (typeof value !== "string") return wrong();
      if (field.enum !== undefined && !field.enum.includes(value)) return wrong();
      if (field.format === "duration") {
        const parsed = parseDuration(value);
        if (!parsed.ok) throw invalid(who, name, `must be a duration such as "30s", "10m" or "1h", or "forever"; found ${JSON.stringify(value)}: ${parsed.problem}`);
      } else if (field.pattern !== undefined && !new RegExp(field.pattern.regex, "u").test(value)) {
        throw invalid(who, name, `must be ${field.pattern.meaning}, found ${JSON.stringify(value)}`);
      }
      return value;
    }
    case "integer": {
      let n: bigint;
      if (typeof value === "number" && Number.isInteger(value)) n = BigInt(value);
      else if (typeof value === "bigint") n = value;
      else if (value instanceof Decimal && value.isInteger()) n = value.toBigInt();
      else return wrong();
      checkBounds(field, Number(n), name, who);
      if (field.big === true) return n;
      if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER)) throw invalid(who, name, `must be at most 2^53 - 1 in size, found ${n}`);
      return Number(n);
    }
    case "number": {
      const n = typeof value === "number" ? value : typeof value === "bigint" ? Number(value) : value instanceof Decimal ? value.toNumber() : wrong();
      checkBounds(field, n, name, who);
      return n;
    }
    case "boolean":
      return typeof value === "boolean" ? value : wrong();
    case "string[]":
      return Array.isArray(value) && value.every((item) => typeof item === "string") ? value : wrong();
    case "record":
      if (!isRecord(value)) return wrong();
      if (field.values === "string" && !Object.values(value).every((item) => typeof item === "string")) return wrong();
      return value;
    case "any":
      return value;
  }
}

function checkBounds(field: OptionField, n: number, name: string, who: string): void {
  if (field.minimum !== undefined && n < field.minimum) throw invalid(who, name, `must be at least ${field.minimum}, found ${n}`);
  if (field.maximum !== undefined && n > field.maximum) throw invalid(who, name, `must be at most ${field.maximum}, found ${n}`);
}

function invalid(who: string, name: string, problem: string): DtsError {
  return new DtsError("DTS7001", `${who}: option ${name} ${problem}`);
}
