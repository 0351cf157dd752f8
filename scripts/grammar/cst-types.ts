/**
 * `src/syntax/cst.generated.ts`: the CST node types, written by Chevrotain's `generateCstDts`
 * from the parser's own productions, so the CST → AST visitor is type-checked against the
 * grammar as it is, not as it was when someone last copied it.
 */
import { generateCstDts } from "../../src/syntax/chevrotain.js";
import { DtsParser } from "../../src/syntax/parser.js";
import type { GeneratedFile } from "../generated.js";

const header = "/* Generated from src/syntax/parser.ts by `npm run gen`. Do not edit by hand. */\n";

export function cstTypesFile(): GeneratedFile[] {
  const productions = new DtsParser().getGAstProductions();
  return [{ path: "src/syntax/cst.generated.ts", content: header + generateCstDts(productions) }];
}
