/**
 * A connector's options, declared once. The declaration drives three things that must not
 * drift apart: the checker's validation (through the JSON Schema built here and ajv), the
 * timing rule (an option fixed at start may not read the change event; a per-event option
 * may), and the generated page `docs/connectors/NAME.md`.
 */

import { DURATION_MEANING, DURATION_PATTERN } from "../model/duration.js";
import type { JsonValue } from "../model/json-value.js";
import type { Value } from "../model/value.js";

export type { JsonValue };

/** When an option's value is computed: once at start, or for every event. */
export type Timing = "start" | "event";

export type OptionType = "string" | "integer" | "number" | "boolean" | "string[]" | "record" | "any";

export interface OptionField {
  readonly type: OptionType;
  readonly description: string;
  readonly timing: Timing;
  readonly required: boolean;
  readonly default?: JsonValue;
  /** Allowed values of a string option. */
  readonly enum?: readonly string[];
  /** The type of every value of a record option; any value when absent. */
  readonly values?: "string";
  readonly minimum?: number;
  readonly maximum?: number;
  /** A regular expression a string option must match, with a human phrase for errors. */
  readonly pattern?: { readonly regex: string; readonly meaning: string };
  /** A string with a meaning of its own, checked with its own error code: `duration` (model/duration.ts). */
  readonly format?: "duration";
  /** Text of an example value as written in a .dts file, e.g. `"public.*"` or `3600`. */
  readonly example?: string;
  /** Passwords and tokens: never printed in a plan. */
  readonly secret?: boolean;
  /** An integer option given to the connector as a bigint, exact beyond 2^53 (a seed). */
  readonly big?: boolean;
}

export type Role = "source" | "sink";

export interface ConnectorSpec<Options extends Readonly<Record<string, OptionField>> = Readonly<Record<string, OptionField>>> {
  readonly name: string;
  readonly role: Role;
  /** One line, shown in lists and at the top of the doc page. */
  readonly summary: string;
  /** Paragraphs of Markdown: behaviour, guarantees, what the connector needs from the server. */
  readonly description: string;
  readonly options: Options;
  /** A complete declaration, e.g. `source shop = postgres { ... }`, shown on the doc page. */
  readonly example: string;
}

type FieldOptions = Partial<Omit<OptionField, "type" | "description">>;

/**
 * A field keeps the literal types it was declared with (its type, `required`, `default`, its
 * enum), so that `OptionsOf<typeof spec>` can say what a connector receives.
 */
type Field<T extends OptionType, O extends FieldOptions> = OptionField & { readonly type: T } & O;

function make<T extends OptionType, const O extends FieldOptions>(type: T, description: string, options: O): Field<T, O> {
  return { type, description, timing: "start", required: false, ...options } as Field<T, O>;
}

/** Builders so that a spec reads as a table: `url: field.string("...", { required: true })`. */
export const field = {
  string: <const O extends FieldOptions = {}>(description: string, options: O = {} as O) => make("string", description, options),
  integer: <const O extends FieldOptions = {}>(description: string, options: O = {} as O) => make("integer", description, options),
  number: <const O extends FieldOptions = {}>(description: string, options: O = {} as O) => make("number", description, options),
  boolean: <const O extends FieldOptions = {}>(description: string, options: O = {} as O) => make("boolean", description, options),
  strings: <const O extends FieldOptions = {}>(description: string, options: O = {} as O) => make("string[]", description, options),
  record: <const O extends FieldOptions = {}>(description: string, options: O = {} as O) => make("record", description, options),
  any: <const O extends FieldOptions = {}>(description: string, options: O = {} as O) => make("any", description, options),
  enumeration: <const V extends readonly string[], const O extends FieldOptions = {}>(values: V, description: string, options: O = {} as O) =>
    make("string", description, { ...options, enum: values }),
  duration: <const O extends FieldOptions = {}>(description: string, options: O = {} as O) =>
    make("string", description, { ...options, format: "duration" as const, pattern: { regex: DURATION_PATTERN, meaning: DURATION_MEANING } }),
};

/**
 * Options every connector has, added to each spec by `defineConnector`. The runtime reads them
 * (runtime/run.ts) and does not pass them on: they are about how the runner treats the
 * connector, not about the connector's own work.
 */
export const COMMON_OPTIONS = {
  retry_for: field.duration(
    "How long the connector may stay unreachable (failing with errors it marks retriable: a dropped connection, a server restarting) before the pipeline stops, counted from the first failure of an outage; a success ends the outage. Retries back off exponentially, with jitter, up to 10 s apart. Without it, the pipeline's `retry_for` (10 minutes unless set).",
    { example: `"30m"` },
  ),
} satisfies Readonly<Record<string, OptionField>>;

export function defineConnector<const Options extends Readonly<Record<string, OptionField>>>(spec: ConnectorSpec<Options>): ConnectorSpec<Options & typeof COMMON_OPTIONS> {
  for (const [name, option] of Object.entries(spec.options)) {
    if (option.required && option.default !== undefined) {
      throw new Error(`connector ${spec.name}: option ${name} is required and has a default`);
    }
    if (Object.hasOwn(COMMON_OPTIONS, name)) throw new Error(`connector ${spec.name}: option ${name} is common to every connector; do not declare it`);
  }
  return { ...spec, options: { ...spec.options, ...COMMON_OPTIONS } };
}

/** The JSON Schema of one option's value. */
export function optionSchema(option: OptionField): Record<string, JsonValue> {
  const schema: Record<string, JsonValue> = { description: option.description };
  switch (option.type) {
    case "string":
      schema.type = "string";
      if (option.enum) schema.enum = [...option.enum];
      if (option.pattern) schema.pattern = option.pattern.regex;
      break;
    case "integer":
    case "number":
      schema.type = option.type;
      if (option.minimum !== undefined) schema.minimum = option.minimum;
      if (option.maximum !== undefined) schema.maximum = option.maximum;
      break;
    case "boolean":
      schema.type = "boolean";
      break;
    case "string[]":
      schema.type = "array";
      schema.items = { type: "string" };
      break;
    case "record":
      schema.type = "object";
      if (option.values) schema.additionalProperties = { type: option.values };
      break;
    case "any":
      break;
    default: {
      const unknown: never = option.type;
      throw new Error(`unknown option type ${String(unknown)}`);
    }
  }
  if (option.default !== undefined) schema.default = option.default;
  return schema;
}

/** The JSON Schema of a whole option block, as published and as used by the checker. */
export function connectorSchema(spec: ConnectorSpec): Record<string, JsonValue> {
  const properties: Record<string, JsonValue> = {};
  for (const [name, option] of Object.entries(spec.options)) properties[name] = optionSchema(option);
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: `https://dts.dev/schemas/${spec.role}/${spec.name}.json`,
    title: `${spec.name} ${spec.role}`,
    description: spec.summary,
    type: "object",
    properties,
    required: Object.entries(spec.options)
      .filter(([, option]) => option.required)
      .map(([name]) => name),
    additionalProperties: false,
  };
}

/** How a type is named in messages and docs. */
export function describeType(option: OptionField): string {
  switch (option.type) {
    case "string[]":
      return "a list of strings";
    case "record":
      return option.values ? `a record of ${option.values}s` : "a record";
    case "any":
      return "any value";
    case "integer":
      return "an integer";
    default:
      return `a ${option.type}`;
  }
}

/** What a connector receives for one option: the spec's type, its enum's values. */
type OptionValue<F extends OptionField> = F extends { readonly enum: readonly (infer E)[] }
  ? E
  : F["type"] extends "string"
    ? string
    : F["type"] extends "integer"
      ? F extends { readonly big: true }
        ? bigint
        : number
      : F["type"] extends "number"
        ? number
        : F["type"] extends "boolean"
          ? boolean
          : F["type"] extends "string[]"
            ? readonly string[]
            : F["type"] extends "record"
              ? F extends { readonly values: "string" }
                ? Readonly<Record<string, string>>
                : Readonly<Record<string, Value>>
              : Value;

/** Whether an option always has a value: it is required, or has a default. */
type AlwaysSet<F extends OptionField> = F extends { readonly required: true } ? true : F extends { readonly default: JsonValue } ? true : false;

/**
 * The options a connector receives, derived from its spec: `OptionsOf<typeof sinkSpec>`. Every
 * option that is required or has a default is there; the others may be undefined. Start-time
 * options only: an option computed per event is a function in `SinkContext.eventOptions`.
 */
export type OptionsOf<S extends ConnectorSpec> = {
  readonly [K in keyof S["options"] as AlwaysSet<S["options"][K]> extends true ? K : never]: OptionValue<S["options"][K]>;
} & {
  readonly [K in keyof S["options"] as AlwaysSet<S["options"][K]> extends true ? never : K]?: OptionValue<S["options"][K]> | undefined;
};
