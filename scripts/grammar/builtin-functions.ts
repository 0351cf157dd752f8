/**
 * The built-in functions the editor grammar highlights. Taken from the language contract
 * (LANGUAGE.md, "calls") while src/expr/signatures.ts is being written; once it settles, this
 * becomes `[...FUNCTIONS.keys()]` from there and the list can no longer drift.
 */
export const builtinFunctionNames: readonly string[] = [
  "lower",
  "upper",
  "trim",
  "length",
  "substr",
  "replace",
  "concat",
  "coalesce",
  "string",
  "int",
  "float",
  "round",
  "floor",
  "ceil",
  "abs",
  "now",
  "hash",
  "json",
  "parse_json",
  "env",
];
