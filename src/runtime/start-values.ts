/**
 * Values fixed at start: the file's `let`s and each connector's options, resolved once before
 * any connector starts. `env()` is read here and only here (the plan keeps it symbolic, so a
 * plan never holds a secret from the environment); an unset variable without a default stops
 * the start with a message naming the variable and the place that asked for it.
 *
 * Options evaluated per event (a Redis key, a Kafka topic) are compiled here too, into
 * closures over a `SinkEvent`, so a sink never sees an expression tree.
 */
import { Decimal } from "../model/decimal.js";
import { qualifiedTableName, type ChangeEvent } from "../model/event.js";
import { jsonToValue, setField, type Row, type Value } from "../model/value.js";
export { jsonToValue };
import { compileExpr, evaluateAtStart, type CompileScope, type EvalContext } from "../expr/compile.js";
import type { JsonValue } from "../model/json-value.js";
import type { OptionPlan, Plan } from "../plan/types.js";
import type { SinkEvent } from "./contracts.js";
import { readOptions } from "../connectors/options.js";
import { findSpec } from "../connectors/registry.js";
import type { Role } from "../connectors/spec.js";
import { DtsError } from "../diagnostics/errors.js";

/** A value fixed at start could not be computed: an unset variable, a bad value. Exit code 1. */
export class StartValueError extends DtsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("DTS7001", message, options);
    this.name = "StartValueError";
  }
}

export interface ResolvedOptions {
  readonly options: Readonly<Record<string, Value>>;
  readonly eventOptions: Readonly<Record<string, (event: SinkEvent) => Value>>;
}

export interface StartValues {
  readonly scope: CompileScope;
  readonly sources: ReadonlyMap<string, ResolvedOptions>;
  readonly sinks: ReadonlyMap<string, ResolvedOptions>;
}

/** Evaluates the lets in plan order (each after the ones it uses), then every option. */
export function resolveStartValues(plan: Plan, env: (name: string) => string | undefined = (name) => process.env[name]): StartValues {
  const lets = new Map<string, Value>();
  const scope: CompileScope = { lets, env };
  for (const letPlan of plan.lets) {
    lets.set(letPlan.name, resolveLet(letPlan.value, scope, `let ${letPlan.name}`));
  }
  const sources = new Map<string, ResolvedOptions>();
  for (const source of plan.sources) {
    const resolved = readConnectorOptions("source", source.connector, resolveOptions(source.options, scope, `source ${source.name}`), `source ${source.name}`);
    const perEvent = Object.keys(resolved.eventOptions);
    if (perEvent.length > 0) {
      throw new StartValueError(`source ${source.name}: option ${perEvent[0]} cannot be evaluated per event in a source`);
    }
    sources.set(source.name, resolved);
  }
  const sinks = new Map<string, ResolvedOptions>();
  for (const sink of plan.sinks) sinks.set(sink.name, readConnectorOptions("sink", sink.connector, resolveOptions(sink.options, scope, `sink ${sink.name}`), `sink ${sink.name}`));
  return { scope, sources, sinks };
}

/**
 * The connector's options read once, against its spec (connectors/options.ts): what every
 * connector is given, by a run and by the tools, typed and with its defaults.
 */
function readConnectorOptions(role: Role, connector: string, resolved: ResolvedOptions, where: string): ResolvedOptions {
  const spec = findSpec(role, connector);
  if (spec === undefined) return resolved;
  try {
    return { options: readOptions(spec, resolved.options, where), eventOptions: resolved.eventOptions };
  } catch (error) {
    throw new StartValueError((error as Error).message, { cause: error });
  }
}

function resolveLet(value: OptionPlan, scope: CompileScope, where: string): Value {
  if ("constant" in value) return letConstant(value.constant);
  if (value.timing === "event") throw new StartValueError(`${where}: a let is fixed at start and cannot read the change event`);
  return evaluate(value, scope, where);
}

export function resolveOptions(options: Readonly<Record<string, OptionPlan>>, scope: CompileScope, where: string): ResolvedOptions {
  const fixed: Record<string, Value> = {};
  const perEvent: Record<string, (event: SinkEvent) => Value> = {};
  for (const [name, option] of Object.entries(options)) {
    if ("constant" in option) {
      fixed[name] = jsonToValue(option.constant);
    } else if (option.timing === "start") {
      fixed[name] = evaluate(option, scope, `${where} option ${name}`);
    } else {
      perEvent[name] = compileEventOption(option.expr, scope, `${where} option ${name}`);
    }
  }
  return { options: fixed, eventOptions: perEvent };
}

function evaluate(option: Extract<OptionPlan, { expr: unknown }>, scope: CompileScope, where: string): Value {
  try {
    return evaluateAtStart(option.expr, scope);
  } catch (error) {
    throw new StartValueError(`${where} (${option.text}): ${(error as Error).message}`, { cause: error });
  }
}

function compileEventOption(expr: Extract<OptionPlan, { expr: unknown }>["expr"], scope: CompileScope, where: string): (event: SinkEvent) => Value {
  let fn;
  try {
    fn = compileExpr(expr, scope);
  } catch (error) {
    throw new StartValueError(`${where}: ${(error as Error).message}`, { cause: error });
  }
  const context = new MutableContext();
  return (sinkEvent) => {
    // One context object per option, refilled for each call: evaluation is synchronous and a
    // compiled expression keeps no reference to its context, so nothing is allocated per event.
    context.event = sinkEvent.event;
    context.row = sinkEvent.event.after ?? sinkEvent.event.before;
    context.target = sinkEvent.target;
    return fn(context);
  };
}

/** An `EvalContext` refilled per event by the code that owns it. */
export class MutableContext implements EvalContext {
  /** Set before every evaluation. */
  event!: ChangeEvent;
  row: Row | null = null;
  target = "";
}

/** The target an event has before any route step. */
export function defaultTarget(event: ChangeEvent): string {
  return qualifiedTableName(event.source);
}


/**
 * A let bound to a constant must hold what the same literal gives in an expression, where a
 * number with a fraction is an exact decimal: `let rate = 1.1` then `row.amount * rate` must
 * stay decimal, as `row.amount * 1.1` does. The plan carries the constant as a JSON number,
 * which the compiler only emits when its shortest text is the literal, so that text is exact.
 */
function letConstant(json: JsonValue): Value {
  if (typeof json === "number" && !Number.isInteger(json)) return new Decimal(json);
  if (json === null || typeof json !== "object") return json;
  if (Array.isArray(json)) return json.map(letConstant);
  const out: Row = {};
  for (const [name, value] of Object.entries(json)) setField(out, name, letConstant(value));
  return out;
}
