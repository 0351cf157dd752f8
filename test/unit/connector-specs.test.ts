/**
 * The connector specs are the single source of the checker's schemas and the reference pages,
 * so their mistakes spread: a schema ajv rejects, a default its own schema refuses, or an
 * example a user would copy and get an error from. This suite catches those at the spec.
 */
import Ajv2020Module from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { sinkSpecs, sourceSpecs } from "../../src/connectors/registry.js";
import { connectorSchema, optionSchema, type ConnectorSpec, type JsonValue } from "../../src/connectors/spec.js";

// ajv is CommonJS: under NodeNext the default import is its module.exports, whose `default`
// is the class (ajv sets it for exactly this case).
const Ajv2020 = Ajv2020Module.default;

const specs: readonly ConnectorSpec[] = [...sourceSpecs, ...sinkSpecs];
const cases = specs.map((spec) => [`${spec.role} ${spec.name}`, spec] as const);

function newAjv() {
  return new Ajv2020({ strict: true, allErrors: true });
}

/**
 * Reads a literal as written in a .dts file: JSON, except that record keys may be bare names.
 * Anything else (env(...), a path such as `key`) is an expression, and yields undefined. The
 * rewrite of bare keys is naive about strings that contain `{name:`; the specs have none.
 */
function readLiteral(text: string): JsonValue | undefined {
  try {
    return JSON.parse(text.replace(/([{,]\s*)([A-Za-z_][A-Za-z0-9_]*)\s*:/g, '$1"$2":')) as JsonValue;
  } catch {
    return undefined;
  }
}

interface Declaration {
  readonly role: string;
  readonly connector: string;
  readonly options: ReadonlyMap<string, string>;
}

/**
 * Just enough of the .dts syntax to read one declaration's option block: entries are split at
 * newlines and commas outside strings and brackets, comments dropped. The language's own
 * parser is checked by its own tests; this keeps the spec tests independent of it.
 */
function readDeclaration(example: string): Declaration {
  const header = /^(source|sink)\s+[A-Za-z_]\w*\s*=\s*([A-Za-z_]\w*)\s*\{/.exec(example.trim());
  if (!header || !example.trim().endsWith("}")) throw new Error(`not a declaration: ${example}`);
  const body = example.trim().slice(header[0].length, -1);
  const options = new Map<string, string>();
  for (const entry of splitEntries(body)) {
    const option = /^([A-Za-z_]\w*)\s*:\s*([\s\S]+)$/.exec(entry);
    if (!option) throw new Error(`not an option: ${entry}`);
    if (options.has(option[1]!)) throw new Error(`option ${option[1]} given twice`);
    options.set(option[1]!, option[2]!.trim());
  }
  return { role: header[1]!, connector: header[2]!, options };
}

function splitEntries(body: string): string[] {
  const entries: string[] = [];
  let current = "";
  let depth = 0;
  let inString = false;
  let inComment = false;
  for (let index = 0; index < body.length; index++) {
    const char = body[index]!;
    if (inComment) {
      if (char !== "\n") continue;
      inComment = false;
    }
    if (inString) {
      current += char;
      if (char === "\\") current += body[++index] ?? "";
      else if (char === '"') inString = false;
      continue;
    }
    if (char === '"') inString = true;
    else if (char === "#" || (char === "/" && body[index + 1] === "/")) {
      inComment = true;
      continue;
    } else if ("([{".includes(char)) depth++;
    else if (")]}".includes(char)) depth--;
    if (depth === 0 && (char === "\n" || char === ",")) {
      entries.push(current);
      current = "";
    } else current += char;
  }
  entries.push(current);
  return entries.map((entry) => entry.trim()).filter((entry) => entry !== "");
}

describe("connector specs", () => {
  it("lists sources as sources and sinks as sinks, each name once per role", () => {
    for (const spec of sourceSpecs) expect(spec.role, spec.name).toBe("source");
    for (const spec of sinkSpecs) expect(spec.role, spec.name).toBe("sink");
    for (const group of [sourceSpecs, sinkSpecs]) {
      const names = group.map((spec) => spec.name);
      expect(new Set(names).size, names.join(", ")).toBe(names.length);
    }
  });

  it.each(cases)("%s: its schema compiles with the 2020-12 draft", (_label, spec) => {
    expect(() => newAjv().compile(connectorSchema(spec))).not.toThrow();
  });

  it.each(cases)("%s: it has a summary, a description, and every option has a description and an example", (_label, spec) => {
    expect(spec.summary.trim()).not.toBe("");
    expect(spec.summary, "a summary is one line").not.toContain("\n");
    expect(spec.description.trim()).not.toBe("");
    for (const [name, option] of Object.entries(spec.options)) {
      expect(option.description.trim(), `${name} has no description`).not.toBe("");
      expect(option.description, `${name}: a description is one line`).not.toContain("\n");
      expect(option.example, `${name} has no example`).toBeDefined();
    }
  });

  it.each(cases)("%s: defaults and examples validate against their own schema", (_label, spec) => {
    const ajv = newAjv();
    const block: Record<string, JsonValue> = {};
    for (const [name, option] of Object.entries(spec.options)) {
      const validate = ajv.compile(optionSchema(option));
      if (option.default !== undefined) {
        expect(validate(option.default), `default of ${name}: ${ajv.errorsText(validate.errors)}`).toBe(true);
        block[name] = option.default;
      }
      const example = readLiteral(option.example ?? "");
      expect(example, `example of ${name} is not a literal: ${option.example}`).toBeDefined();
      expect(validate(example), `example of ${name}: ${ajv.errorsText(validate.errors)}`).toBe(true);
      if (option.required) block[name] = example!;
      if (option.timing === "start") {
        expect(option.example, `${name} is fixed at start, so its example cannot use the event`).not.toContain("${");
      }
    }
    const validateBlock = ajv.compile(connectorSchema(spec));
    expect(validateBlock(block), ajv.errorsText(validateBlock.errors)).toBe(true);
    expect(validateBlock({ ...block, no_such_option: 1 }), "unknown options are rejected").toBe(false);
  });

  it.each(cases)("%s: its example declaration is valid", (_label, spec) => {
    const declaration = readDeclaration(spec.example);
    expect(declaration.role).toBe(spec.role);
    expect(declaration.connector).toBe(spec.name);
    const ajv = newAjv();
    for (const [name, value] of declaration.options) {
      const option = spec.options[name];
      expect(option, `unknown option ${name} in the example`).toBeDefined();
      const literal = readLiteral(value);
      if (option && literal !== undefined) {
        const validate = ajv.compile(optionSchema(option));
        expect(validate(literal), `${name}: ${ajv.errorsText(validate.errors)}`).toBe(true);
      }
    }
    for (const [name, option] of Object.entries(spec.options)) {
      if (option.required) expect(declaration.options.has(name), `required option ${name} missing`).toBe(true);
    }
  });
});
