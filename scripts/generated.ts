/**
 * Every file the project generates from its own source, with the content it must have. One
 * list serves both `npm run gen` (which writes it) and a unit test (which fails when a
 * checked-in file differs), so a generator added here is kept fresh by both at once.
 */
import { readdir } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";
import { renderConnectorIndex, renderConnectorPage, schemaFileName, specsByConnector } from "../src/connectors/doc.js";
import { findSink, findSource, isBuilt, sinkSpecs, sourceSpecs } from "../src/connectors/registry.js";
import { connectorSchema, type ConnectorSpec } from "../src/connectors/spec.js";
import { cstTypesFile } from "./grammar/cst-types.js";
import { ebnfFile } from "./grammar/ebnf.js";
import { railroadFiles } from "./grammar/railroad.js";
import { grammarReadmeFile } from "./grammar/readme.js";
import { textmateFile } from "./grammar/textmate.js";

export interface GeneratedFile {
  /** Relative to the repository root, with "/" separators. */
  readonly path: string;
  readonly content: string;
}

type Generator = () => readonly GeneratedFile[] | Promise<readonly GeneratedFile[]>;

/**
 * Folders that hold generated files only: a file in them that no generator produces is left
 * over from a removed connector or page, and is reported (and removed by `npm run gen`).
 */
export const generatedFolders: readonly string[] = ["docs/connectors", "grammar"];

const generators: readonly Generator[] = [
  connectorPages,
  connectorSchemas,
  cstTypesFile,
  railroadFiles,
  ebnfFile,
  textmateFile,
  grammarReadmeFile,
];

export async function generatedFiles(): Promise<GeneratedFile[]> {
  const files: GeneratedFile[] = [];
  for (const generate of generators) files.push(...(await generate()));
  const seen = new Set<string>();
  for (const file of files) {
    if (seen.has(file.path)) throw new Error(`two generators write ${file.path}`);
    seen.add(file.path);
  }
  return files;
}

function allSpecs(): ConnectorSpec[] {
  return [...sourceSpecs, ...sinkSpecs];
}

function connectorPages(): GeneratedFile[] {
  const specs = allSpecs();
  return [
    ...specsByConnector(specs).map(([name, group]) => ({
      path: `docs/connectors/${name}.md`,
      content: renderConnectorPage(name, group),
    })),
    {
      path: "docs/connectors/README.md",
      content: renderConnectorIndex(
        specs,
        (spec) => isBuilt(spec.role, spec.name),
        (spec) => toolsOf(spec),
      ),
    },
  ];
}

/** The tool capabilities a connector's role declares, in the order the index explains them. */
function toolsOf(spec: ConnectorSpec): string[] {
  if (spec.role === "source") {
    const source = findSource(spec.name);
    return (["preflight", "describe", "status", "verify", "drop"] as const).filter((tool) => source?.[tool] !== undefined);
  }
  const sink = findSink(spec.name);
  const tools: string[] = (["preflight", "verify", "drop"] as const).filter((tool) => sink?.[tool] !== undefined);
  if (sink?.checkpointStore !== undefined) tools.push("checkpoints");
  return tools;
}

function connectorSchemas(): GeneratedFile[] {
  return allSpecs().map((spec) => ({
    path: `docs/connectors/schemas/${schemaFileName(spec)}`,
    content: JSON.stringify(connectorSchema(spec), null, 2) + "\n",
  }));
}

/** Files under `generatedFolders` (relative to root) that no generator produces, sorted. */
export async function staleFiles(root: string, files: readonly GeneratedFile[]): Promise<string[]> {
  const expected = new Set(files.map((file) => file.path));
  const stale: string[] = [];
  for (const folder of generatedFolders) {
    for (const path of await filesUnder(resolve(root, folder))) {
      const relativePath = relative(root, path).split(sep).join("/");
      if (!expected.has(relativePath)) stale.push(relativePath);
    }
  }
  return stale.sort();
}

async function filesUnder(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return [];
    throw error;
  });
  const nested = await Promise.all(
    entries.map((entry) => (entry.isDirectory() ? filesUnder(join(folder, entry.name)) : [join(folder, entry.name)])),
  );
  return nested.flat();
}
