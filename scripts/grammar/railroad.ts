/**
 * `grammar/railroad.html`: Chevrotain's syntax diagrams of every parser rule. Chevrotain's page
 * loads its scripts from a CDN; this one loads copies of them kept beside it in
 * `grammar/diagrams/`, taken from the installed chevrotain package, so the page works offline
 * and always matches the chevrotain version that parses.
 *
 * Terminals are relabelled with the text they match (`->` rather than `Arrow`), the way the
 * EBNF writes them.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { createSyntaxDiagramsCode, type ISerializedGast, type TokenType } from "../../src/syntax/chevrotain.js";
import { DtsParser } from "../../src/syntax/parser.js";
import { allTokens } from "../../src/syntax/tokens.js";
import type { GeneratedFile } from "../generated.js";
import { literalText, tokenClass } from "./terminals.js";

const resourceBase = "diagrams/";
const chevrotainHeader = "<!-- This is a generated file -->";
const header = "<!-- Generated from src/syntax/parser.ts by `npm run gen`. Do not edit by hand. -->";
const charset = '<meta charset="utf-8">';

export function railroadFiles(): GeneratedFile[] {
  const grammar = new DtsParser().getSerializedGastProductions().map(relabel);
  let html = createSyntaxDiagramsCode(grammar, { resourceBase, css: `${resourceBase}diagrams.css` });
  html = replaceOnce(html, chevrotainHeader, header);
  html = replaceOnce(html, charset, `${charset}\n<title>The .dts grammar</title>`);
  html = html.replace(/[ \t]+$/gm, "").trimStart();
  const files: GeneratedFile[] = [{ path: "grammar/railroad.html", content: html }];

  // Copy exactly what the page loads, so the list cannot fall behind chevrotain's template.
  const packageRoot = chevrotainRoot();
  const resources = [...html.matchAll(new RegExp(`(?:src|href)='${resourceBase}([^']+)'`, "g"))].map((match) => match[1]!);
  if (resources.length === 0) throw new Error("railroad.html loads no scripts: chevrotain's template changed");
  const copies = resources.sort().map((resource) => [join("diagrams", resource), resource] as const);
  copies.push(["LICENSE.txt", "LICENSE.txt"]);
  for (const [from, to] of copies) {
    files.push({ path: `grammar/diagrams/${to}`, content: readFileSync(join(packageRoot, from), "utf8") });
  }
  return files;
}

const tokensByName = new Map(allTokens.map((type) => [type.name, type]));

function relabel(node: ISerializedGast): ISerializedGast {
  const copy: ISerializedGast & { [key: string]: unknown } = { ...node };
  if (node.type === "Terminal") {
    const type: TokenType | undefined = tokensByName.get(String(copy["name"]));
    if (type === undefined) throw new Error(`unknown terminal ${String(copy["name"])}`);
    const literal = literalText(type);
    copy["label"] = literal ?? type.name;
    copy["pattern"] = literal ?? tokenClass(type).description;
  }
  if (node.definition !== undefined) copy.definition = node.definition.map(relabel);
  if ("separator" in copy) copy["separator"] = relabel(copy["separator"] as ISerializedGast);
  return copy;
}

/** The installed chevrotain package: its main entry is lib/src/api.js. */
function chevrotainRoot(): string {
  const entry = createRequire(import.meta.url).resolve("chevrotain");
  return join(dirname(entry), "..", "..");
}

function replaceOnce(text: string, search: string, replacement: string): string {
  const at = text.indexOf(search);
  if (at === -1) throw new Error(`chevrotain's diagram page no longer contains ${search}`);
  return text.slice(0, at) + replacement + text.slice(at + search.length);
}
