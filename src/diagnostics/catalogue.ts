/**
 * Every diagnostic dts prints, by code. One catalogue, as in TypeScript's
 * diagnosticMessages.json: a stage reports a code and the values for its template, never a
 * free-form string, so messages stay consistent and each code can be documented and tested.
 *
 *   DTS1xxx  text and syntax      DTS2xxx  names
 *   DTS3xxx  connector options    DTS4xxx  expression types
 *   DTS5xxx  files a pipeline refers to
 *   DTS6xxx  the servers a pipeline reads, as `dts check --live` and a source's start find
 *            them (the connectors' preflight capability: one check, one code, both places)
 */
import type { Severity } from "./diagnostic.js";

interface Entry {
  readonly severity: Severity;
  readonly template: string;
}

const entries = {
  // -- text and syntax
  DTS1001: { severity: "error", template: 'unexpected character "{char}"' },
  DTS1002: { severity: "error", template: "unterminated string: the closing quote is missing" },
  DTS1003: { severity: "error", template: 'unterminated interpolation: "${" has no closing "}"' },
  DTS1004: { severity: "error", template: 'unknown escape sequence "\\{char}" in a string' },
  DTS1005: { severity: "error", template: "empty interpolation: write an expression between ${ and }" },
  DTS1006: { severity: "error", template: "expected {expected}, found {found}" },
  DTS1007: { severity: "error", template: "expected a declaration (pipeline, source, sink, let or flow), found {found}" },
  DTS1008: { severity: "error", template: "expected an expression, found {found}" },
  DTS1009: { severity: "error", template: 'unclosed "{open}": no matching "{close}"' },
  DTS1010: { severity: "error", template: 'unknown step "{word}"; a step is filter, map, route or validate' },
  DTS1011: { severity: "error", template: "{found} cannot follow here: {reason}" },
  DTS1012: { severity: "error", template: "a flow needs at least one sink after ->" },
  DTS1013: { severity: "error", template: "comparisons do not chain: a comparison cannot be compared again" },
  DTS1014: { severity: "error", template: '"{close}" closes nothing: no "{open}" is open before it' },
  DTS1015: { severity: "error", template: "nested too deeply or too long to compile (the limit is {limit} levels of brackets)" },
  DTS1016: { severity: "error", template: "this declaration cannot be read; check its brackets and quotes" },
  // -- names
  DTS2001: { severity: "error", template: '"{name}" is declared twice; the first declaration is at line {line}' },
  DTS2002: { severity: "error", template: 'unknown source "{name}"' },
  DTS2003: { severity: "error", template: 'unknown sink "{name}"' },
  DTS2004: { severity: "error", template: 'unknown name "{name}"' },
  DTS2005: { severity: "error", template: '"{name}" is a sink; a flow reads from a source' },
  DTS2006: { severity: "error", template: '"{name}" is a source; a flow writes into sinks' },
  DTS2007: { severity: "warning", template: '{kind} "{name}" is never used' },
  DTS2008: { severity: "error", template: "a file holds at most one pipeline declaration; the first is at line {line}" },
  DTS2009: { severity: "error", template: 'unknown {kind} connector "{name}"' },
  DTS2010: { severity: "error", template: 'unknown function "{name}"' },
  DTS2011: { severity: "error", template: "{name}() takes {expected} argument{plural}, found {found}" },
  DTS2012: { severity: "error", template: "env() is read once at start, so it is allowed in option blocks and lets, not in a step" },
  DTS2013: { severity: "error", template: '"{name}" is a field of the change event; {place} is fixed at start and cannot use it' },
  DTS2014: { severity: "error", template: 'unknown field "{name}" of {object}' },
  DTS2015: { severity: "error", template: 'let "{name}" depends on itself: {cycle}' },
  DTS2016: { severity: "error", template: 'sink "{name}" is listed twice in this flow' },
  DTS2017: { severity: "error", template: 'field "{name}" is set twice in this record' },
  DTS2018: { severity: "warning", template: 'dropping "{name}", which is not set before this point' },
  DTS2019: { severity: "error", template: 'the dead_letter sink "{name}" also receives a flow; it must only receive rejected events' },
  DTS2020: { severity: "error", template: "a pipeline needs at least one flow" },
  DTS2021: { severity: "error", template: '"{name}" is a {kind} connector only; it cannot be used as a {wanted}' },
  // -- connector options and pipeline settings
  DTS3001: { severity: "error", template: 'unknown option "{name}" for {connector} {kind}' },
  DTS3002: { severity: "error", template: 'missing required option "{name}" for {connector} {kind}' },
  DTS3003: { severity: "error", template: 'option "{name}" must be {expected}, found {found}' },
  DTS3004: { severity: "error", template: 'option "{name}" must be one of {allowed}, found {found}' },
  DTS3005: { severity: "error", template: 'option "{name}" {problem}' },
  DTS3006: { severity: "error", template: 'option "{name}" is fixed at start; it cannot use the event field "{field}"' },
  DTS3007: { severity: "error", template: 'unknown pipeline setting "{name}"' },
  DTS3008: { severity: "error", template: 'checkpoint "{value}" needs a {connector} sink in this pipeline' },
  DTS3009: { severity: "error", template: "an option block holds named values; {found} cannot stand here" },
  DTS3010: { severity: "error", template: 'option "{name}" is not valid: {problem}' },
  DTS3011: { severity: "error", template: 'the pipeline setting "{name}" must be {expected}, found {found}' },
  DTS3012: { severity: "error", template: '{what} must be a duration such as "30s", "10m" or "1h", or "forever"; found {found}' },
  // -- expression types
  DTS4001: { severity: "error", template: 'operator "{operator}" cannot apply to {left} and {right}' },
  DTS4002: { severity: "error", template: 'operator "{operator}" cannot apply to {operand}' },
  DTS4003: { severity: "error", template: "a filter condition must be a boolean, found {found}" },
  DTS4004: { severity: "error", template: "a route target must be a string, found {found}" },
  DTS4005: { severity: "error", template: "only a record can be spread, found {found}" },
  DTS4006: { severity: "error", template: "invalid regular expression: {problem}" },
  DTS4007: { severity: "error", template: "argument {position} of {name}() must be {expected}, found {found}" },
  DTS4008: { severity: "error", template: '{found} has no fields; "{name}" cannot be read from it' },
  DTS4009: { severity: "error", template: "cannot index {found}" },
  DTS4010: { severity: "warning", template: "{what} turns an exact {kind} into a double, which may lose digits" },
  // -- referenced files
  DTS5001: { severity: "error", template: 'schema file "{path}" not found' },
  DTS5002: { severity: "error", template: 'schema file "{path}" is not valid JSON: {problem}' },
  DTS5003: { severity: "error", template: 'schema file "{path}" is not a valid JSON Schema: {problem}' },
  // -- servers (preflight)
  DTS6001: { severity: "error", template: "the server has wal_level = {level}; logical replication needs wal_level = logical" },
  DTS6002: { severity: "error", template: "user {user} may not open replication connections: it lacks the REPLICATION attribute" },
  DTS6003: { severity: "error", template: "the server is PostgreSQL {version}; the postgres source needs PostgreSQL 14 or later" },
  DTS6004: { severity: "error", template: "table {table} does not exist in {where}" },
  DTS6005: { severity: "error", template: 'no table matches "{pattern}" in {where}' },
  DTS6006: { severity: "error", template: "table {table} has no primary key, and dts applies changes by key" },
  DTS6007: { severity: "error", template: "table {table} has REPLICA IDENTITY NOTHING: in a publication, the server would reject its UPDATEs and DELETEs" },
  DTS6008: { severity: "warning", template: "this flow reads before, but {table} has {problem}" },
  DTS6009: { severity: "warning", template: "{table} has {problem}" },
  DTS6030: { severity: "error", template: "the server has {setting} = {value}; the mysql source needs {setting} = {wanted}" },
  DTS6031: { severity: "error", template: "user {user} lacks the {privilege} privilege, which the mysql source needs to {purpose}" },
} satisfies Record<string, Entry>;

export type DiagnosticCode = keyof typeof entries;
export const catalogue: Readonly<Record<DiagnosticCode, Entry>> = entries;

/** The entry's template with each `{name}` replaced by `args.name`. */
export function catalogueMessage(code: DiagnosticCode, args: Readonly<Record<string, string | number>>): string {
  return catalogue[code].template.replace(/\{(\w+)\}/g, (_, key: string) => {
    const value = args[key];
    if (value === undefined) throw new Error(`diagnostic ${code}: no value for {${key}}`);
    return String(value);
  });
}
