/**
 * Static checking of expressions: names, fields of `source`, functions and their arity,
 * operator types where the operand types are known, and the rule that decides what an
 * expression may read — the change event (steps and per-event options) or only lets and
 * `env()` (lets, options fixed at start, pipeline settings).
 *
 * Types come from src/expr/signatures.ts, the table the runtime also obeys, so a program the
 * checker accepts cannot be rejected by the evaluator for a reason the checker could know.
 * Columns of `row`, `before`, `after` and `key` are "any" unless `dts check --live` has
 * read the source's schemas (`columns`).
 */
import type { Expr, RecordExpr, Span } from "../ast/nodes.js";
import { DiagnosticBag } from "../diagnostics/diagnostic.js";
import { closestMatch, didYouMean } from "../diagnostics/suggest.js";
import {
  EVENT_NAMES,
  FUNCTIONS,
  REGEX_FLAGS,
  SOURCE_FIELDS,
  binaryResultType,
  callResultType,
  isAssignable,
  isNumericType,
  parameterTypes,
  unaryResultType,
  type StaticType,
} from "../expr/signatures.js";

/** Where an expression stands decides what it may read. */
export type Place =
  /** `inOption`: a per-event connector option, where `env()` may still be read once at start. */
  | { readonly kind: "event"; readonly inOption?: boolean }
  /** `what` names the place in messages: `let "x"`, `option "url"`, `the pipeline setting "checkpoint"`. */
  | { readonly kind: "start"; readonly what: string; readonly option?: string };

/** Known columns of the tables a flow reads, from `dts check --live`; absent = unknown. */
export interface ColumnInfo {
  /** Column name → static type, union over the flow's tables. */
  readonly columns: ReadonlyMap<string, StaticType>;
  /** Names of the tables, for messages ("no column amout in public.orders"). */
  readonly tables: readonly string[];
}

export interface ExpressionScope {
  /** The static type of a let, or undefined when no let has that name. */
  letType(name: string, span: Span): StaticType | undefined;
  readonly letNames: () => Iterable<string>;
  readonly columns?: ColumnInfo;
  /** Called for each name an expression reads, to find unused lets. */
  readonly onUse?: (name: string) => void;
  /** A name declared by a declaration that did not parse: its error is already reported. */
  readonly isHalfDeclared?: (name: string) => boolean;
}

const ROW_IMAGES = new Set(["row", "before", "after", "key"]);

export class ExpressionChecker {
  constructor(
    private readonly diagnostics: DiagnosticBag,
    private readonly scope: ExpressionScope,
  ) {}

  /** The same checker, knowing the columns of the tables a flow reads. */
  withColumns(columns: ColumnInfo): ExpressionChecker {
    return new ExpressionChecker(this.diagnostics, { ...this.scope, columns });
  }

  check(expr: Expr, place: Place): StaticType {
    switch (expr.kind) {
      case "number":
        return expr.fractional ? "decimal" : "integer";
      case "string":
        return "string";
      case "boolean":
        return "boolean";
      case "null":
        return "null";
      case "template":
        for (const part of expr.parts) if (typeof part !== "string") this.check(part, place);
        return "string";
      case "list":
        for (const item of expr.items) this.check(item, place);
        return "list";
      case "record":
        this.checkRecord(expr, place);
        return "record";
      case "identifier":
        return this.identifier(expr.name, expr.span, place);
      case "member":
        return this.member(expr, place);
      case "index": {
        const object = this.check(expr.object, place);
        const index = this.check(expr.index, place);
        if (object !== "any" && object !== "null" && object !== "list" && object !== "record") {
          this.diagnostics.report("DTS4009", expr.object.span, { found: describe(object) });
        } else if (object === "list" && !isAssignable(index, ["integer"])) {
          this.diagnostics.report("DTS4007", expr.index.span, { position: 1, name: "[]", expected: "an integer", found: describe(index) });
        }
        return "any";
      }
      case "unary": {
        const operand = this.check(expr.operand, place);
        const result = unaryResultType(expr.operator, operand);
        if ("error" in result) {
          this.diagnostics.report("DTS4002", expr.span, { operator: expr.operator, operand: describe(operand) });
          return "any";
        }
        return result.type;
      }
      case "binary": {
        const left = this.check(expr.left, place);
        const right = this.check(expr.right, place);
        if (expr.operator === "matches" && expr.right.kind === "string") this.checkRegex(expr.right.value, expr.right.span);
        const result = binaryResultType(expr.operator, left, right);
        if (!("error" in result) && result.type === "float" && (left === "decimal" || right === "decimal")) {
          this.diagnostics.report("DTS4010", expr.operatorSpan, { what: `"${expr.operator}" with a float`, kind: "decimal" }, { help: "write the other operand as a decimal, e.g. 1.5 rather than float(...)" });
        }
        if ("error" in result) {
          const joinsText = expr.operator === "+" && (left === "string" || right === "string") && (isNumericType(left) || isNumericType(right));
          this.diagnostics.report(
            "DTS4001",
            expr.operatorSpan,
            { operator: expr.operator, left: describe(left), right: describe(right) },
            joinsText ? { help: 'to join text, convert the number with string(x), or write "${...}" in a string' } : {},
          );
          return "any";
        }
        return result.type;
      }
      case "isNull":
        this.check(expr.operand, place);
        return "boolean";
      case "call":
        return this.call(expr, place);
      default: {
        const never: never = expr;
        throw new Error(`unknown expression ${JSON.stringify(never)}`);
      }
    }
  }

  /** A map's record, a record literal or an option block's nested record. */
  checkRecord(record: RecordExpr, place: Place): void {
    const set = new Map<string, Span>();
    let spread = false;
    for (const entry of record.entries) {
      switch (entry.kind) {
        case "field": {
          const first = set.get(entry.name.text);
          if (first !== undefined) this.diagnostics.report("DTS2017", entry.name.span, { name: entry.name.text });
          set.set(entry.name.text, entry.name.span);
          this.check(entry.value, place);
          break;
        }
        case "spread": {
          const type = this.check(entry.value, place);
          if (type !== "record" && type !== "any" && type !== "null") {
            this.diagnostics.report("DTS4005", entry.value.span, { found: describe(type) });
          }
          spread = true;
          break;
        }
        case "drop":
          if (!spread && !set.has(entry.name.text)) this.diagnostics.report("DTS2018", entry.name.span, { name: entry.name.text });
          set.delete(entry.name.text);
          break;
      }
    }
  }

  private identifier(name: string, span: Span, place: Place): StaticType {
    if (place.kind === "event" && name in EVENT_NAMES) return EVENT_NAMES[name]!;
    this.scope.onUse?.(name);
    const letType = this.scope.letType(name, span);
    if (letType !== undefined) return letType;
    if (place.kind === "start" && name in EVENT_NAMES) {
      if (place.option !== undefined) {
        this.diagnostics.report(
          "DTS3006",
          span,
          { name: place.option, field: name },
          { help: "an option read once at start may use lets and env(); only per-event options, such as a Redis key or a Kafka topic, see the event" },
        );
      }
      else this.diagnostics.report("DTS2013", span, { name, place: place.what });
      return "any";
    }
    if (this.scope.isHalfDeclared?.(name)) return "any";
    const candidates = place.kind === "event" ? [...Object.keys(EVENT_NAMES), ...this.scope.letNames()] : [...this.scope.letNames()];
    const meant = closestMatch(name, candidates);
    // The let it most likely meant is not "never used" as well.
    if (meant !== undefined) this.scope.onUse?.(meant);
    this.diagnostics.report("DTS2004", span, { name }, meant === undefined ? {} : { help: `did you mean "${meant}"?` });
    return "any";
  }

  private member(expr: Extract<Expr, { kind: "member" }>, place: Place): StaticType {
    const object = this.check(expr.object, place);
    const property = expr.property.text;
    if (object === "any" || object === "null") return "any";
    if (object !== "record") {
      this.diagnostics.report("DTS4008", expr.property.span, { found: describe(object), name: property });
      return "any";
    }
    const root = expr.object.kind === "identifier" && place.kind === "event" ? expr.object.name : undefined;
    if (root === "source") {
      const type = SOURCE_FIELDS[property];
      if (type !== undefined) return type;
      const help = didYouMean(property, Object.keys(SOURCE_FIELDS));
      this.diagnostics.report("DTS2014", expr.property.span, { name: property, object: "source" }, help === undefined ? {} : { help });
      return "any";
    }
    if (root !== undefined && ROW_IMAGES.has(root) && this.scope.columns !== undefined) {
      const columns = this.scope.columns;
      const type = columns.columns.get(property);
      if (type !== undefined) return type;
      const help = didYouMean(property, columns.columns.keys());
      this.diagnostics.report(
        "DTS2014",
        expr.property.span,
        { name: property, object: `${root} (no column "${property}" in ${columns.tables.join(", ")})` },
        help === undefined ? {} : { help },
      );
      return "any";
    }
    if (expr.object.kind === "record") {
      const field = expr.object.entries.find((entry) => entry.kind === "field" && entry.name.text === property);
      if (field === undefined && !expr.object.entries.some((entry) => entry.kind === "spread")) {
        this.diagnostics.report("DTS2014", expr.property.span, { name: property, object: "this record" });
      }
    }
    return "any";
  }

  private call(expr: Extract<Expr, { kind: "call" }>, place: Place): StaticType {
    const name = expr.callee.text;
    const args = expr.args.map((arg) => this.check(arg, place));
    const signature = FUNCTIONS.get(name);
    if (signature === undefined) {
      const help = didYouMean(name, FUNCTIONS.keys());
      this.diagnostics.report("DTS2010", expr.callee.span, { name }, help === undefined ? {} : { help });
      return "any";
    }
    if (signature.startOnly && place.kind === "event" && place.inOption !== true) {
      this.diagnostics.report("DTS2012", expr.span, {}, { help: "bind it once at start: let name = env(\"VAR\", \"default\"), then use name here" });
    }
    if (args.length < signature.minArgs || args.length > signature.maxArgs) {
      const expected =
        signature.maxArgs === Infinity
          ? `at least ${signature.minArgs}`
          : signature.minArgs === signature.maxArgs
            ? `${signature.minArgs}`
            : `${signature.minArgs} to ${signature.maxArgs}`;
      const plural = signature.maxArgs === 1 && signature.minArgs === 1 ? "" : "s";
      this.diagnostics.report("DTS2011", expr.span, { name, expected, plural, found: args.length });
      return "any";
    }
    args.forEach((type, index) => {
      const accepted = parameterTypes(signature, index);
      if (!isAssignable(type, accepted)) {
        this.diagnostics.report("DTS4007", expr.args[index]!.span, {
          position: index + 1,
          name,
          expected: accepted.map(describe).join(" or "),
          found: describe(type),
        });
      }
    });
    if (name === "float" && (args[0] === "decimal" || args[0] === "integer")) {
      this.diagnostics.report("DTS4010", expr.span, { what: "float()", kind: args[0] }, { help: "keep the value exact unless a double is really wanted; round(x, digits) rounds exactly" });
    }
    return callResultType(signature, args);
  }

  private checkRegex(pattern: string, span: Span): void {
    try {
      new RegExp(pattern, REGEX_FLAGS);
    } catch (error) {
      // V8 says "Invalid regular expression: /PATTERN/u: Unterminated character class"; the pattern is under the caret already.
      const message = (error as Error).message.replace(/^Invalid regular expression: /, "");
      const reason = message.startsWith("/") ? message.slice(message.lastIndexOf(": ") + 2) : message;
      const problem = reason.charAt(0).toLowerCase() + reason.slice(1);
      this.diagnostics.report("DTS4006", span, { problem });
    }
  }
}

/** How a static type is named in messages. */
export function describe(type: StaticType): string {
  switch (type) {
    case "any":
      return "a value";
    case "null":
      return "null";
    case "integer":
      return "an integer";
    case "list":
      return "a list";
    case "record":
      return "a record";
    case "number":
      return "a number";
    default:
      return `a ${type}`;
  }
}
