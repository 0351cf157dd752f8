/**
 * The connector reference, rendered from the specs: `docs/connectors/NAME.md` per connector and
 * `docs/connectors/README.md` as the index. Rendering is pure (text in, text out) so that a
 * test can compare it with the checked-in pages; a page that could drift from the checker's
 * schema would be worse than none.
 */
import { describeType, type ConnectorSpec, type OptionField, type Role } from "./spec.js";

const roleOrder: readonly Role[] = ["source", "sink"];

const roleTitle: Readonly<Record<Role, string>> = { source: "Source", sink: "Sink" };

/** The file name of a spec's published JSON Schema, inside `docs/connectors/schemas/`. */
export function schemaFileName(spec: ConnectorSpec): string {
  return `${spec.role}-${spec.name}.json`;
}

/** Specs grouped by connector name (a name may be both a source and a sink), sorted by name, then role. */
export function specsByConnector(specs: readonly ConnectorSpec[]): [string, ConnectorSpec[]][] {
  const groups = new Map<string, ConnectorSpec[]>();
  for (const spec of specs) groups.set(spec.name, [...(groups.get(spec.name) ?? []), spec]);
  return [...groups.entries()]
    .sort(([a], [b]) => compareText(a, b))
    .map(([name, group]) => [name, [...group].sort(byRole)]);
}

export function renderConnectorPage(name: string, specs: readonly ConnectorSpec[]): string {
  if (specs.length === 0) throw new Error(`connector ${name}: no specs to render`);
  const roles = new Set<Role>();
  for (const spec of specs) {
    if (spec.name !== name) throw new Error(`connector ${name}: got the spec of ${spec.name}`);
    if (roles.has(spec.role)) throw new Error(`connector ${name}: two ${spec.role} specs`);
    roles.add(spec.role);
  }
  const ordered = [...specs].sort(byRole);
  const summary =
    ordered.length === 1
      ? [ordered[0].summary]
      : ordered.map((spec) => `- **${roleTitle[spec.role]}:** ${spec.summary}`);
  const lines = [
    `<!-- Generated from src/connectors/${name}/spec.ts by \`npm run gen\`. Do not edit by hand. -->`,
    "",
    `# ${name}`,
    "",
    ...summary,
    "",
    ...ordered.flatMap(renderRole),
    "See also [all connectors](README.md).",
  ];
  return lines.join("\n") + "\n";
}

/**
 * The index of every connector. `built` says whether a role has an implementation yet, so
 * the page a "not built yet" error points to tells the truth, and `tools` which of the tools'
 * capabilities it declares (the generator reads both from the registry, and the staleness
 * test catches a change that lands without regenerating).
 */
export function renderConnectorIndex(specs: readonly ConnectorSpec[], built: (spec: ConnectorSpec) => boolean, tools: (spec: ConnectorSpec) => readonly string[]): string {
  const rows = specsByConnector(specs).flatMap(([name, group]) =>
    group.map((spec) => `| [${name}](${name}.md) | ${spec.role} | ${built(spec) ? "built" : "specified; not built yet"} | ${tools(spec).join(", ") || "-"} | ${cell(spec.summary)} |`),
  );
  const lines = [
    "<!-- Generated from src/connectors/*/spec.ts and index.ts by `npm run gen`. Do not edit by hand. -->",
    "",
    "# Connectors",
    "",
    "A source reads a change stream; a sink writes events somewhere. Each page below lists the",
    "connector's options, which of them are evaluated per event, and an example declaration.",
    "The option blocks are checked against the JSON Schemas in [schemas/](schemas/).",
    "",
    "A connector that is specified but not built yet is already checked by `dts check` and",
    "`dts plan`; `dts-run` stops at start with that message.",
    "",
    "The tools column says what the tools can ask of the connector (see docs/running.md):",
    "`preflight` (server settings, privileges, keys: `dts check --live` and the start), `describe`",
    "(table schemas, for `dts check --live`), `status` (`dts status`), `verify` (`dts verify` reads",
    "its tables), `drop` (`dts drop` removes what it keeps on its server), `checkpoints` (it can",
    "keep a pipeline's checkpoints, and the tools read and remove them there).",
    "",
    "| connector | role | status | tools | summary |",
    "|---|---|---|---|---|",
    ...rows,
  ];
  return lines.join("\n") + "\n";
}

function renderRole(spec: ConnectorSpec): string[] {
  const options = Object.entries(spec.options);
  const table =
    options.length === 0
      ? [`This ${spec.role} has no options.`]
      : [
          "| option | type | required / default | when | description |",
          "|---|---|---|---|---|",
          ...options.map(([name, option]) => renderOptionRow(name, option)),
        ];
  const schema = schemaFileName(spec);
  return [
    `## ${roleTitle[spec.role]}`,
    "",
    spec.description.trim(),
    "",
    "### Example",
    "",
    "```dts",
    spec.example.trim(),
    "```",
    "",
    "### Options",
    "",
    ...table,
    "",
    `JSON Schema of the options: [schemas/${schema}](schemas/${schema}).`,
    "",
  ];
}

function renderOptionRow(name: string, option: OptionField): string {
  const requirement = option.required
    ? "required"
    : option.default !== undefined
      ? `default ${code(JSON.stringify(option.default))}`
      : "optional";
  const when = option.timing === "event" ? "per event" : "at start";
  const notes = [option.description];
  if (option.secret) notes.push("Secret: never printed in a plan.");
  if (option.example !== undefined) notes.push(`Example: ${code(option.example)}`);
  const cells = [code(name), typeText(option), requirement, when, notes.join(" ")];
  return `| ${cells.map(cell).join(" | ")} |`;
}

/** The type with its constraints, since a reader needs both to write a valid value. */
function typeText(option: OptionField): string {
  if (option.enum) return `one of ${option.enum.map((value) => code(JSON.stringify(value))).join(", ")}`;
  const limits: string[] = [];
  if (option.minimum !== undefined) limits.push(`at least ${option.minimum}`);
  if (option.maximum !== undefined) limits.push(`at most ${option.maximum}`);
  if (option.pattern) limits.push(`matching ${option.pattern.meaning}`);
  return [describeType(option), ...limits].join(", ");
}

/** Inline code that survives any backticks in the text (CommonMark: a longer fence). */
function code(text: string): string {
  const longestRun = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = "`".repeat(longestRun + 1);
  const pad = text.startsWith("`") || text.endsWith("`") ? " " : "";
  return `${fence}${pad}${text}${pad}${fence}`;
}

/** A table cell is one line, and a bare | would end it early (even inside code, in GFM). */
function cell(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").replace(/\|/g, "\\|");
}

function byRole(a: ConnectorSpec, b: ConnectorSpec): number {
  return roleOrder.indexOf(a.role) - roleOrder.indexOf(b.role);
}

/** Code-point order, so the output does not depend on the machine's locale. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
