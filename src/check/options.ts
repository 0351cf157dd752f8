/**
 * Connector option blocks, validated against the connector's JSON Schema with ajv — the
 * same schema published in docs/connectors/schemas — and every problem reported at the
 * option's own position. ajv sees the options whose values are known at compile time;
 * options that read `env()` or the event are checked by their static type instead, and by
 * the runtime once their value exists.
 */
import { createRequire } from "node:module";
import type { ErrorObject, ValidateFunction } from "ajv";
import type { Expr, Name, RecordExpr, RecordField, Span } from "../ast/nodes.js";
import { connectorSchema, describeType, type ConnectorSpec, type JsonValue, type OptionField } from "../connectors/spec.js";
import { DiagnosticBag } from "../diagnostics/diagnostic.js";
import { closestMatch, didYouMean } from "../diagnostics/suggest.js";
import { isAssignable, type StaticType } from "../expr/signatures.js";
import { parseDuration } from "../model/duration.js";
import { describe, type ExpressionChecker } from "./expressions.js";
import type { StaticValue } from "./static-value.js";

// ajv is CommonJS; loading it through require keeps its default export typed under NodeNext.
const require = createRequire(import.meta.url);
const Ajv2020 = require("ajv/dist/2020.js") as typeof import("ajv/dist/2020.js").default;
const ajv = new Ajv2020({ allErrors: true, strict: false });
const validators = new Map<ConnectorSpec, ValidateFunction>();

function validatorFor(spec: ConnectorSpec): ValidateFunction {
  let validate = validators.get(spec);
  if (validate === undefined) {
    const schema = { ...connectorSchema(spec) };
    delete schema.$id; // a schema is compiled once per spec object; ids would collide across reloads
    validate = ajv.compile(schema);
    validators.set(spec, validate);
  }
  return validate;
}

export interface CheckedOption {
  readonly field: RecordField;
  readonly spec: OptionField;
  readonly value: StaticValue;
}

export interface OptionContext {
  readonly diagnostics: DiagnosticBag;
  readonly expressions: ExpressionChecker;
  readonly staticValue: (expr: Expr) => StaticValue;
  /** Counts the names of an expression that is reported rather than checked as used. */
  readonly mention?: (expr: Expr) => void;
}

const acceptedTypes: Readonly<Record<OptionField["type"], readonly StaticType[]>> = {
  string: ["string"],
  integer: ["integer"],
  number: ["number"],
  boolean: ["boolean"],
  "string[]": ["list"],
  record: ["record"],
  any: ["any"],
};

/** Checks `block` against `spec`; returns the options written, by name. */
export function checkOptions(
  block: RecordExpr,
  spec: ConnectorSpec,
  connector: Name,
  context: OptionContext,
): Map<string, CheckedOption> {
  const { diagnostics } = context;
  const checked = new Map<string, CheckedOption>();
  // An unknown option that looks like a known one is that one misspelled: it is not also "missing".
  const meant = new Set<string>();
  for (const entry of block.entries) {
    if (entry.kind !== "field") {
      diagnostics.report(
        "DTS3009",
        entry.span,
        { found: entry.kind === "spread" ? "a spread (...)" : "a drop (-name)" },
        { help: entry.kind === "spread" ? "write each option by name" : "leave the option out instead" },
      );
      if (entry.kind === "spread") context.mention?.(entry.value);
      continue;
    }
    const name = entry.name.text;
    const option = spec.options[name];
    if (option === undefined) {
      const guess = closestMatch(name, Object.keys(spec.options));
      if (guess !== undefined) meant.add(guess);
      const help = guess === undefined ? undefined : `did you mean "${guess}"?`;
      diagnostics.report(
        "DTS3001",
        entry.name.span,
        { name, connector: spec.name, kind: spec.role },
        { help: help ?? `known options: ${Object.keys(spec.options).join(", ") || "none"}` },
      );
      context.expressions.check(entry.value, { kind: "event" });
      continue;
    }
    if (checked.has(name)) {
      diagnostics.report("DTS2017", entry.name.span, { name });
      continue;
    }
    const type =
      option.timing === "event"
        ? context.expressions.check(entry.value, { kind: "event", inOption: true })
        : context.expressions.check(entry.value, { kind: "start", what: `option "${name}"`, option: name });
    const value = context.staticValue(entry.value);
    if (!value.known && !isAssignable(type, acceptedTypes[option.type])) {
      diagnostics.report("DTS3003", entry.value.span, { name, expected: describeType(option), found: describe(type) });
    }
    checked.set(name, { field: entry, spec: option, value });
  }

  const instance: Record<string, JsonValue> = {};
  for (const [name, option] of checked) if (option.value.known) instance[name] = option.value.value;
  const validate = validatorFor(spec);
  if (!validate(instance)) {
    for (const error of validate.errors ?? []) reportSchemaError(error, spec, connector, block, checked, meant, diagnostics);
  }
  for (const [name, option] of checked) {
    if (option.spec.format !== "duration" || !option.value.known) continue;
    const value = option.value.value;
    if (typeof value !== "string" || !parseDuration(value).ok) reportBadDuration(diagnostics, option.field.value.span, `option "${name}"`, value);
  }
  return checked;
}

function reportSchemaError(
  error: ErrorObject,
  spec: ConnectorSpec,
  connector: Name,
  block: RecordExpr,
  checked: ReadonlyMap<string, CheckedOption>,
  meant: ReadonlySet<string>,
  diagnostics: DiagnosticBag,
): void {
  if (error.keyword === "additionalProperties") return; // reported with a suggestion above
  if (error.keyword === "required") {
    const missing = (error.params as { missingProperty: string }).missingProperty;
    if (checked.has(missing) || meant.has(missing)) return; // present, but known only at start; or misspelled
    const option = spec.options[missing]!;
    diagnostics.report(
      "DTS3002",
      connector.span,
      { name: missing, connector: spec.name, kind: spec.role },
      { help: `add ${missing}: ${option.example ?? "..."}` },
    );
    return;
  }
  const [name, ...rest] = error.instancePath.split("/").slice(1);
  if (name === undefined) return;
  const option = checked.get(name);
  // A duration's every problem is reported once, with its own code, by checkOptions.
  if (option === undefined || option.spec.format === "duration") return;
  const span = spanAt(option.field.value, rest) ?? option.field.value.span;
  const shown = rest.length > 0 ? `${name}[${rest.join("][")}]` : name;
  switch (error.keyword) {
    case "type": {
      const found = valueAt(option.value, rest);
      const wanted = String(error.params.type);
      const unquoted =
        typeof found === "string" && ((wanted === "integer" && /^-?\d+$/.test(found)) || (wanted === "number" && /^-?\d+(\.\d+)?$/.test(found)) || (wanted === "boolean" && /^(true|false)$/.test(found)))
          ? found
          : undefined;
      diagnostics.report(
        "DTS3003",
        span,
        { name: shown, expected: rest.length > 0 ? `a ${wanted}` : describeType(option.spec), found: describeJson(found) },
        unquoted !== undefined ? { help: `write it without quotes: ${shown}: ${unquoted}` } : wanted === "array" && typeof found === "string" ? { help: `write a list: ${shown}: [${JSON.stringify(found)}]` } : {},
      );
      return;
    }
    case "enum": {
      const allowed = (error.params as { allowedValues: string[] }).allowedValues;
      const found = valueAt(option.value, rest);
      const help = typeof found === "string" ? didYouMean(found, allowed) : undefined;
      diagnostics.report(
        "DTS3004",
        span,
        { name: shown, allowed: allowed.map((v) => JSON.stringify(v)).join(", "), found: JSON.stringify(found) },
        help === undefined ? {} : { help },
      );
      return;
    }
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum": {
      const limit = (error.params as { limit: number }).limit;
      const words = error.keyword === "minimum" ? "at least" : error.keyword === "maximum" ? "at most" : error.keyword === "exclusiveMinimum" ? "above" : "below";
      diagnostics.report("DTS3005", span, { name: shown, problem: `must be ${words} ${limit}, found ${JSON.stringify(valueAt(option.value, rest))}` });
      return;
    }
    case "pattern": {
      const meaning = option.spec.pattern?.meaning ?? `match ${option.spec.pattern?.regex ?? "its pattern"}`;
      const found = valueAt(option.value, rest);
      // "Shop-Slot" → "shop_slot": offered when that form is allowed.
      const tidy = typeof found === "string" ? found.toLowerCase().replace(/[^a-z0-9_]+/g, "_") : undefined;
      const fits = tidy !== undefined && tidy !== found && option.spec.pattern !== undefined && new RegExp(option.spec.pattern.regex, "u").test(tidy);
      diagnostics.report("DTS3005", span, { name: shown, problem: `must be ${meaning}, found ${JSON.stringify(found)}` }, fits ? { help: `did you mean "${tidy}"?` } : {});
      return;
    }
    default:
      diagnostics.report("DTS3010", span, { name: shown, problem: error.message ?? error.keyword });
  }
}

/** DTS3012 for a value that is not a duration, with what is wrong with it or the duration meant. */
export function reportBadDuration(diagnostics: DiagnosticBag, span: Span, what: string, found: JsonValue | undefined): void {
  let help: string | undefined;
  if (typeof found === "number" && Number.isInteger(found) && found >= 0) help = `write it as a string with a unit: "${found}s" or "${found}m"`;
  else if (typeof found === "string") {
    const parsed = parseDuration(found);
    if (!parsed.ok) {
      if (parsed.suggestion !== undefined) help = `did you mean "${parsed.suggestion}"?`;
      else if (parsed.problem.startsWith("it is not")) help = 'write whole numbers with units from the largest to the smallest (d, h, m, s, ms), e.g. "90s" or "1h30m"';
      else help = parsed.problem;
    }
  }
  diagnostics.report("DTS3012", span, { what, found: typeof found === "string" ? JSON.stringify(found) : describeJson(found) }, help === undefined ? {} : { help });
}

/** The AST node at a JSON path inside an option value (`/tables/1` → the second list item). */
function spanAt(expr: Expr, path: readonly string[]): Span | undefined {
  let node: Expr | undefined = expr;
  for (const segment of path) {
    if (node === undefined) return undefined;
    if (node.kind === "list") node = node.items[Number(segment)];
    else if (node.kind === "record") {
      const field: RecordField | undefined = node.entries.find((entry): entry is RecordField => entry.kind === "field" && entry.name.text === segment);
      node = field?.value;
    } else return undefined;
  }
  return node?.span;
}

function valueAt(value: StaticValue, path: readonly string[]): JsonValue | undefined {
  if (!value.known) return undefined;
  let current: JsonValue | undefined = value.value;
  for (const segment of path) {
    if (Array.isArray(current)) current = current[Number(segment)];
    else if (current !== null && typeof current === "object") current = current[segment];
    else return undefined;
  }
  return current;
}

function describeJson(value: JsonValue | undefined): string {
  if (value === undefined || value === null) return "null";
  if (Array.isArray(value)) return "a list";
  switch (typeof value) {
    case "string":
      return `a string (${JSON.stringify(value)})`;
    case "number":
      return Number.isInteger(value) ? `an integer (${value})` : `a number (${value})`;
    case "boolean":
      return `a boolean (${value})`;
    default:
      return "a record";
  }
}
