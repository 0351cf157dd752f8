/**
 * grammar/dts.ebnf is generated (test/unit/generated.test.ts keeps it fresh); this checks that
 * what it generates is complete: a definition for every parser rule, every keyword and fixed
 * token written as text, and no rule left unused.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { literalText } from "../../scripts/grammar/terminals.js";
import { DtsParser } from "../../src/syntax/parser.js";
import { allTokens, keywordTokens } from "../../src/syntax/tokens.js";

const ebnf = readFileSync(resolve(process.cwd(), "grammar/dts.ebnf"), "utf8");
const ruleNames = Object.keys(new DtsParser().getGAstProductions());
const definitions = new Map(
  [...ebnf.matchAll(/^(\w+) +::= ([\s\S]*?)(?=\n\w+ +::=|\n\n|\n\/\*|(?![\s\S]))/gm)].map((match) => [match[1]!, match[2]!]),
);

describe("grammar/dts.ebnf", () => {
  it("says it is generated", () => {
    expect(ebnf).toMatch(/^\/\*[\s\S]*generated from src\/syntax\/parser\.ts by `npm run gen`/);
  });

  it.each(ruleNames)("defines the rule %s", (name) => {
    expect(definitions.has(name)).toBe(true);
  });

  it.each(keywordTokens.map((type) => type.name.toLowerCase()))("writes the keyword %s as text", (word) => {
    expect(ebnf).toContain(`"${word}"`);
  });

  it("writes every fixed-text token the parser consumes as text, and no token by its name", () => {
    for (const type of allTokens) {
      const text = literalText(type);
      if (text !== undefined && type.GROUP === undefined) expect(ebnf, type.name).toContain(`"${text}"`);
    }
    for (const name of ["Arrow", "Pipe", "LCurly", "Comma", "NOT_APPLICABLE"]) expect(ebnf).not.toContain(name);
  });

  it("uses every rule but the start rule, and uses only rules and token classes it defines", () => {
    const bodies = [...definitions.values()].join("\n").replace(/"[^"]*"|'[^']*'|\/[^/\s]*\/|\/\*[\s\S]*?\*\/|\[[^\]]*\]/g, " ");
    const used = new Set(bodies.match(/[A-Za-z_]\w*/g));
    expect(ruleNames.filter((name) => name !== "file" && !used.has(name))).toEqual([]);
    expect([...used].filter((name) => !definitions.has(name))).toEqual([]);
  });
});
