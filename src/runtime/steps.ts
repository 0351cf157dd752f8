/**
 * A flow's steps, compiled once into one function over a batch.
 *
 * Every step becomes a closure over a small mutable state (the event as the previous steps
 * left it, and its target); running a batch is a loop over events and, inside, over those
 * closures, with one evaluation context per flow refilled for each event. What is allocated
 * per event is only what the output needs: the `SinkEvent` a kept event becomes (shared by
 * all the flow's sinks), and the new event a `map` makes.
 *
 * A step never drops an event silently. A filter that says no drops it, which is what a filter
 * is for; anything else that goes wrong — an expression error, a map that gives no record, a
 * route that gives no string, a row the JSON Schema refuses — rejects the event: it comes out
 * in `rejected`, *as it entered the flow* (so a dead-letter file can be replayed through the
 * pipeline once the cause is fixed), with the reason and the place (flow, step, step text).
 * The runner sends it to the dead-letter sink, or stops the pipeline with it.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { Decimal } from "../model/decimal.js";
import type { ChangeEvent } from "../model/event.js";
import { Timestamp } from "../model/timestamp.js";
import { isRecord, JsonNull, typeOf, type Row, type Value } from "../model/value.js";
import { compileExpr, type CompileScope, type CompiledExpr } from "../expr/compile.js";
import type { FlowPlan, PlanExpr, StepPlan } from "../plan/types.js";
import type { Logger, SinkEvent } from "./contracts.js";
import { defaultTarget, MutableContext, StartValueError } from "./start-values.js";
import { DtsError } from "../diagnostics/errors.js";

const require = createRequire(import.meta.url);
const Ajv2020 = require("ajv/dist/2020.js") as typeof import("ajv/dist/2020.js").default;

/** What a flow made of one batch. Indexes are the events' places in the source batch. */
export interface FlowOutput {
  readonly kept: SinkEvent[];
  readonly keptIndex: number[];
  readonly rejected: SinkEvent[];
  readonly rejectedIndex: number[];
}

export interface CompiledFlow {
  readonly id: string;
  readonly source: string;
  readonly sinks: readonly string[];
  /**
   * The flow has no steps: every event goes to its sinks as it came, so a batch's bulk rows
   * (`SourceBatch.bulk`) still hold exactly its events and may go instead of them.
   */
  readonly passesAll: boolean;
  /**
   * Every kept event keeps its source table's columns and target: the steps only filter and
   * validate. A sink of such a flow is told of the source's schema changes (SinkBatch.schemaChanges).
   */
  readonly keepsColumns: boolean;
  /** Runs the steps over a batch, appending to `out` (the caller's, new for each batch). */
  run(events: readonly ChangeEvent[], out: FlowOutput): void;
}

export function emptyFlowOutput(): FlowOutput {
  return { kept: [], keptIndex: [], rejected: [], rejectedIndex: [] };
}

/** The state steps pass along while one event goes through a flow. */
interface StepState {
  event: ChangeEvent;
  target: string;
}

/** A compiled step: false drops the event (a filter); an exception rejects it. */
type StepFn = (state: StepState) => boolean;

/** A step refused an event. `message` is the reason a user reads. */
class StepRejection extends DtsError {
  constructor(message: string) {
    super("DTS7202", message);
    this.name = "StepRejection";
  }
}

export interface StepCompileOptions {
  readonly scope: CompileScope;
  /** The pipeline file's folder: validate's schema paths are relative to it. */
  readonly baseDir: string;
  readonly log: Logger;
}

export function compileFlow(flow: FlowPlan, options: StepCompileOptions): CompiledFlow {
  const context = new MutableContext();
  const steps: StepFn[] = [];
  const places: string[] = [];
  for (const step of flow.steps) {
    steps.push(compileStep(step, context, options));
    // Step ids are written `flow:1/step:2`; the flow is named once either way.
    places.push(`${step.id.startsWith(flow.id) ? step.id : `${flow.id} ${step.id}`}: ${step.text}`);
  }
  const state: StepState = { event: undefined as unknown as ChangeEvent, target: "" };
  const stepCount = steps.length;
  const sourceName = flow.source;

  const run = (events: readonly ChangeEvent[], out: FlowOutput): void => {
    for (let index = 0; index < events.length; index++) {
      const event = events[index]!;
      const target = defaultTarget(event);
      state.event = event;
      state.target = target;
      let step = 0;
      try {
        for (; step < stepCount; step++) if (!steps[step]!(state)) break;
      } catch (error) {
        out.rejected.push({ event, target, sourceName, rejection: { reason: reasonOf(error), where: places[step]! } });
        out.rejectedIndex.push(index);
        continue;
      }
      if (step < stepCount) continue;
      out.kept.push({ event: state.event, target: state.target, sourceName });
      out.keptIndex.push(index);
    }
  };
  const keepsColumns = flow.steps.every((step) => step.kind === "filter" || step.kind === "validate");
  return { id: flow.id, source: flow.source, sinks: flow.sinks, passesAll: stepCount === 0, keepsColumns, run };
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function compileStep(step: StepPlan, context: MutableContext, options: StepCompileOptions): StepFn {
  switch (step.kind) {
    case "filter": {
      const condition = compile(step.condition, step, options);
      return (state) => {
        const value = condition(fill(context, state));
        if (value === true) return true;
        if (value === false || value === null) return false;
        throw new StepRejection(`a filter condition must be a boolean, found ${typeOf(value)}`);
      };
    }
    case "map": {
      const record = compile(step.record, step, options);
      const image = (row: Row | null, state: StepState, which: string): Row | null => {
        if (row === null) return null;
        context.event = state.event;
        context.row = row;
        context.target = state.target;
        const value = record(context);
        if (!isRecord(value)) throw new StepRejection(`a map must give a record, found ${typeOf(value)} for the ${which} image`);
        return value;
      };
      return (state) => {
        const event = state.event;
        // Both images are reshaped the same way, so that a sink comparing before and after
        // (or applying a delete by its before image) sees rows of one shape.
        const before = image(event.before, state, "before");
        const after = image(event.after, state, "after");
        state.event = { op: event.op, before, after, key: event.key, source: event.source };
        return true;
      };
    }
    case "route": {
      const target = compile(step.target, step, options);
      return (state) => {
        const value = target(fill(context, state));
        if (typeof value !== "string") throw new StepRejection(`a route target must be a string, found ${typeOf(value)}`);
        state.target = value;
        return true;
      };
    }
    case "validate": {
      const validate = compileSchema(step.schema, options);
      return (state) => {
        const row = state.event.after ?? state.event.before;
        if (validate(plainJson(row))) return true;
        throw new StepRejection(`the row does not match ${step.schema}: ${validate.describeErrors()}`);
      };
    }
    default: {
      const never: never = step;
      throw new Error(`unknown step ${JSON.stringify(never)}`);
    }
  }
}

function fill(context: MutableContext, state: StepState): MutableContext {
  context.event = state.event;
  context.row = state.event.after ?? state.event.before;
  context.target = state.target;
  return context;
}

function compile(expr: PlanExpr, step: StepPlan, options: StepCompileOptions): CompiledExpr {
  try {
    return compileExpr(expr, options.scope);
  } catch (error) {
    throw new StartValueError(`${step.id} (${step.text}): ${reasonOf(error)}`, { cause: error });
  }
}

interface RowValidator {
  (row: unknown): boolean;
  describeErrors(): string;
}

/** Reads and compiles a JSON Schema once, at start; errors there stop the start (exit 1). */
function compileSchema(schemaPath: string, options: StepCompileOptions): RowValidator {
  const file = resolve(options.baseDir, schemaPath);
  let schema: unknown;
  try {
    schema = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new StartValueError(`validate "${schemaPath}": cannot read the schema ${file}: ${reasonOf(error)}`, { cause: error });
  }
  const log = options.log;
  const ajv = new Ajv2020({
    strict: false,
    allErrors: false,
    logger: { log: (...args: unknown[]) => log.debug(args.join(" ")), warn: (...args: unknown[]) => log.warn(args.join(" ")), error: (...args: unknown[]) => log.error(args.join(" ")) },
  });
  let check: ReturnType<typeof ajv.compile>;
  try {
    check = ajv.compile(schema as object);
  } catch (error) {
    throw new StartValueError(`validate "${schemaPath}": not a valid JSON Schema: ${reasonOf(error)}`, { cause: error });
  }
  const validator = ((row: unknown) => check(row) as boolean) as RowValidator;
  // Where in the row, what is wrong, and which rule of the schema said so: the schema path
  // is what a reader of the dead-letter sink needs to find the rule (or fix the schema).
  validator.describeErrors = () =>
    (check.errors ?? []).map((error) => `${ajv.errorsText([error], { dataVar: "row" })} (schema ${error.schemaPath})`).join("; ");
  return validator;
}

/**
 * A row as JSON Schema sees it: plain JSON values. Integers and decimals become numbers
 * (a schema's `type: "integer"` or `maximum` means the number, whatever its exact kind),
 * timestamps their ISO text, bytes their base64 text.
 */
export function plainJson(value: Value): unknown {
  switch (typeof value) {
    case "bigint":
      return Number(value);
    case "object": {
      if (value === null || value instanceof JsonNull) return null;
      if (value instanceof Decimal) return Number(value.toString());
      if (value instanceof Timestamp) return value.toISOString();
      if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64");
      if (Array.isArray(value)) return value.map(plainJson);
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(value)) {
        Object.defineProperty(out, key, { value: plainJson(value[key]!), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    default:
      return value;
  }
}
