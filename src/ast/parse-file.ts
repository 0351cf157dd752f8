/** The front door of the syntax stages: text in, an AST and the diagnostics found on the way out. */
import { DiagnosticBag } from "../diagnostics/diagnostic.js";
import { parseText } from "../syntax/parse.js";
import { AstBuilder } from "./build.js";
import type { PipelineFile } from "./nodes.js";

export function parseFile(text: string, diagnostics: DiagnosticBag = new DiagnosticBag()): { file: PipelineFile; diagnostics: DiagnosticBag } {
  const { cst } = parseText(text, diagnostics, "file");
  const file = new AstBuilder(text, diagnostics).visit(cst) as PipelineFile;
  return { file, diagnostics };
}
