/**
 * The editor grammar (grammar/dts.tmLanguage.json) must see a file the way the lexer does:
 * the same keywords, strings and comments, in the example pipelines (pipelines/) and in
 * snippets chosen to trip it. There is no Oniguruma here, so the grammar runs in a small
 * TextMate-style scanner over JavaScript regular expressions (the generator keeps its patterns
 * to what both engines read alike). The scanner follows vscode-textmate's rules: line by line,
 * the earliest match wins, a tie goes to the pattern listed first, and an open rule's `end`
 * wins a tie with the patterns inside it.
 */
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Lexer, type IToken, type TokenType } from "../../src/syntax/chevrotain.js";
import { describe, expect, it } from "vitest";
import {
  keywordClasses,
  textmateGrammar,
  type Captures,
  type TextMateGrammar,
  type TextMateRule,
} from "../../scripts/grammar/textmate.js";
import { connectorNames } from "../../src/connectors/registry.js";
import {
  allTokens,
  HashComment,
  Identifier,
  keywordTokens,
  SlashComment,
  StringLiteral,
  WhiteSpace,
} from "../../src/syntax/tokens.js";

const grammar = textmateGrammar();
const lexer = new Lexer(allTokens as TokenType[]);
/** The project's example pipelines: the six jobs and the quickstart. */
const examplesFolder = resolve(import.meta.dirname, "../../pipelines");

const snippets: Record<string, string> = {
  "names that begin like keywords": [
    "let sourcetable = 1",
    "let mapping = notify + isnull + nullable + true_value + infinity",
    "let x_in = flows ?? sinks ?? letter ?? filtered ?? routes ?? validated",
  ].join("\n"),
  "keywords where a name is expected": [
    "flow s",
    "  | map { map: row.in, filter: source.table, -is, ...row, sink: source[\"db\"] }",
    "  -> t",
  ].join("\n"),
  strings: [
    'let a = "say \\"hi\\" \\\\ ${row.name} # not a comment // nor this"',
    'let b = "${coalesce(row.name, "}")}"',
    'let c = "${ {a: "}"}.a }x" + "\\u{1F600}\\u0041\\$\\/\\n"',
    'let d = "" + "$" + "${" + "x"',
    'let e = "${ {a: 1}.a + "z" }"',
  ].join("\n"),
  "an unclosed string ends at the end of its line": ['let a = "open', "let b = 1 # a comment", 'let c = "${row.x'].join(
    "\n",
  ),
  comments: [
    '# a hash comment with a "quote" in it',
    "// a slash comment",
    "let a = 1 // after code",
    "let b = 2 / 3 # after code",
    'let c = "#" + "//" #',
  ].join("\n"),
  operators: [
    "flow s",
    "  | filter a ?? b == c and d != e or f <= g >= h < i > j in [1, 2.5, 3e10] and not k",
    '  | filter x matches "^a" and y is not null and z is null',
    "  | route -1 * 2 / 3 % 4 - (5 + 6)",
    '  | validate "schema.json"',
    "  -> t, u",
  ].join("\n"),
};

function inputs(): [string, string][] {
  const examples = readdirSync(examplesFolder)
    .filter((name) => name.endsWith(".dts"))
    .sort()
    .map((name): [string, string] => [name, readFileSync(resolve(examplesFolder, name), "utf8")]);
  return [...examples, ...Object.entries(snippets)];
}

describe("the TextMate grammar agrees with the lexer", () => {
  it("finds the examples", () => {
    expect(inputs().length).toBeGreaterThan(Object.keys(snippets).length);
  });

  describe.each(inputs())("%s", (_name, text) => {
    const { tokens, errors } = lexer.tokenize(text);
    const regions = scan(grammar, text);
    const strings = tokens.filter((token) => token.tokenType === StringLiteral).map(span);
    const comments = commentSpans(text, tokens);
    const keywordPatterns = (grammar.repository["keywords"]!.patterns ?? []).map((rule) => rule.match!);

    it("lexes cleanly", () => {
      expect(errors).toEqual([]);
      expect(text).not.toContain("\r");
    });

    it("matches every keyword token with a keyword pattern, at the same place and length", () => {
      for (const token of tokens.filter((token) => keywordTokens.includes(token.tokenType))) {
        const matched = keywordPatterns.some((pattern) => {
          const match = new RegExp(pattern, "y");
          match.lastIndex = token.startOffset;
          return match.exec(text)?.[0] === token.image;
        });
        expect(matched, `keyword ${token.image} at offset ${token.startOffset}`).toBe(true);
      }
    });

    it("matches no identifier with a keyword pattern", () => {
      const keywordMatches = keywordPatterns.flatMap((pattern) => matchSpans(pattern, text));
      for (const token of tokens.filter((token) => token.tokenType === Identifier)) {
        const [start, end] = span(token);
        const overlapping = keywordMatches.filter(([from, to]) => from < end && to > start);
        expect(overlapping, `identifier ${token.image} at offset ${start}`).toEqual([]);
      }
    });

    it("matches keywords exactly where the lexer finds them, outside strings and comments", () => {
      const quoted = [...strings, ...comments];
      const found = keywordPatterns
        .flatMap((pattern) => matchSpans(pattern, text))
        .filter(([start]) => !quoted.some(([from, to]) => start >= from && start < to));
      const expected = tokens.filter((token) => keywordTokens.includes(token.tokenType)).map(span);
      expect(sortSpans(found)).toEqual(sortSpans(expected));
    });

    it("scopes every string token, and only those, as a string", () => {
      const stringRegions = regions.filter((region) => region.scope === "string.quoted.double.dts").map(toSpan);
      const outermost = stringRegions.filter(
        ([start, end]) => !stringRegions.some(([from, to]) => from <= start && to >= end && (from < start || to > end)),
      );
      expect(sortSpans(outermost)).toEqual(sortSpans(strings));
    });

    it("scopes every comment, and only those, as a comment", () => {
      const commentRegions = regions.filter((region) => region.scope.startsWith("comment.")).map(toSpan);
      expect(sortSpans(commentRegions)).toEqual(sortSpans(comments));
    });
  });
});

describe("the TextMate grammar's scopes", () => {
  it("gives each keyword the scope of where the parser uses it", () => {
    const classes = keywordClasses();
    const all = Object.values(classes).flat();
    expect([...all].sort()).toEqual(keywordTokens.map((type) => type.name.toLowerCase()).sort());
    expect(classes.declaration).toEqual(["pipeline", "source", "sink", "let", "flow"]);
    expect(classes.step).toEqual(expect.arrayContaining(["filter", "map", "route", "validate"]));
    expect(classes.constant).toEqual(expect.arrayContaining(["true", "false", "null"]));
    expect(classes.operator).toEqual(expect.arrayContaining(["and", "or", "not", "in", "is", "matches"]));
  });

  it("has a pattern for every keyword", () => {
    const patterns = (grammar.repository["keywords"]!.patterns ?? []).map((rule) => new RegExp(`^(?:${rule.match!})$`));
    for (const type of keywordTokens) {
      const word = type.name.toLowerCase();
      expect(patterns.some((pattern) => pattern.test(word)), word).toBe(true);
    }
  });

  it.each([
    ...connectorNames("source").map((name) => ["source", name] as const),
    ...connectorNames("sink").map((name) => ["sink", name] as const),
  ])("names the %s connector %s as a type", (role, name) => {
    const text = `${role} x = ${name} { url: "u" }`;
    expect(scopeAt(text, text.indexOf(name), name.length)).toContain("entity.name.type.dts");
  });

  it("does not name an unknown connector as a type", () => {
    const text = "source x = postgress { }";
    expect(scopeAt(text, text.indexOf("postgress"), "postgress".length)).not.toContain("entity.name.type.dts");
  });

  it.each([
    ["let a = lower(row.name)", "lower", "support.function.builtin.dts"],
    ["let a = parse_json (row.doc)", "parse_json", "support.function.builtin.dts"],
    ["flow s | filter row.in > 1 -> t", "in", "variable.other.property.dts"],
    ["flow s | map { map: 1 } -> t", "map:", "variable.other.property.dts"],
    ['flow s | route "x." + source.table -> t', "source", "variable.language.dts"],
    ["flow s | filter a matches b -> t", "matches", "keyword.operator.word.dts"],
    ["flow s | filter x is not null -> t", "null", "constant.language.dts"],
    ["flow s | validate \"v.json\" -> t", "validate", "keyword.control.step.dts"],
    ["let a = 12.5e3", "12.5e3", "constant.numeric.dts"],
    ["flow s -> t", "->", "keyword.operator.arrow.dts"],
    ['let a = "x\\q"', "\\q", "invalid.illegal.escape.dts"],
    ['let a = "x${1 + 2}"', "1", "constant.numeric.dts"],
  ])("in %s, scopes %s as %s", (text, part, scope) => {
    const length = part.endsWith(":") ? part.length - 1 : part.length;
    expect(scopeAt(text, text.lastIndexOf(part), length)).toContain(scope);
  });
});

// ------------------------------------------------------------------ lexer side

type Span = readonly [number, number];

function span(token: IToken): Span {
  return [token.startOffset, token.startOffset + token.image.length];
}

/** Comments are skipped by the lexer: find them in the gaps between tokens, with its patterns. */
function commentSpans(text: string, tokens: readonly IToken[]): Span[] {
  const found: Span[] = [];
  const skipped = [WhiteSpace, HashComment, SlashComment].map(
    (type) => [type, new RegExp((type.PATTERN as RegExp).source, "y")] as const,
  );
  let position = 0;
  for (const end of [...tokens.map((token) => token.startOffset), text.length]) {
    while (position < end) {
      const hit = skipped.find(([, pattern]) => {
        pattern.lastIndex = position;
        return pattern.test(text);
      });
      if (hit === undefined) throw new Error(`unexpected text at offset ${position}`);
      const [type, pattern] = hit;
      if (type !== WhiteSpace) found.push([position, pattern.lastIndex]);
      position = pattern.lastIndex;
    }
    const token = tokens.find((candidate) => candidate.startOffset === end);
    if (token !== undefined) position = end + token.image.length;
  }
  return found;
}

function matchSpans(pattern: string, text: string): Span[] {
  return [...text.matchAll(new RegExp(pattern, "g"))].map((match) => [match.index, match.index + match[0].length]);
}

function sortSpans(spans: readonly Span[]): Span[] {
  return [...spans].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
}

// --------------------------------------------------------- TextMate side

interface Region {
  readonly scope: string;
  readonly start: number;
  readonly end: number;
}

function toSpan(region: Region): Span {
  return [region.start, region.end];
}

/** The scopes that cover the whole of [start, start + length). */
function scopeAt(text: string, start: number, length: number): string[] {
  expect(start).toBeGreaterThanOrEqual(0);
  return scan(grammar, text)
    .filter((region) => region.start <= start && region.end >= start + length)
    .map((region) => region.scope);
}

/** Runs a grammar over a text, returning every named region (rules and captures). */
function scan(grammarToRun: TextMateGrammar, text: string): Region[] {
  const regions: Region[] = [];
  const open: { rule: TextMateRule; start: number }[] = [];
  const name = (scope: string | undefined, start: number, end: number) => {
    if (scope !== undefined) regions.push({ scope, start, end });
  };
  const captures = (list: Captures | undefined, match: RegExpExecArray, lineStart: number) => {
    for (const [group, capture] of Object.entries(list ?? {})) {
      const indices = match.indices?.[Number(group)];
      if (indices !== undefined) name(capture.name, lineStart + indices[0], lineStart + indices[1]);
    }
  };

  let lineStart = 0;
  for (const line of text.split("\n")) {
    let position = 0;
    for (let steps = 0; position <= line.length; steps++) {
      if (steps > 10_000) throw new Error(`the grammar does not advance on line: ${line}`);
      const top = open.at(-1);
      let best: { match: RegExpExecArray; rule: TextMateRule | undefined } | undefined;
      if (top !== undefined) {
        const match = search(top.rule.end!, line, position);
        if (match !== null) best = { match, rule: undefined };
      }
      for (const rule of flatten(grammarToRun, top === undefined ? grammarToRun.patterns : (top.rule.patterns ?? []))) {
        const match = search(rule.match ?? rule.begin!, line, position);
        if (match !== null && (best === undefined || match.index < best.match.index)) best = { match, rule };
      }
      if (best === undefined) break;
      const { match, rule } = best;
      const start = lineStart + match.index;
      const end = start + match[0].length;
      if (rule === undefined) {
        captures(top!.rule.endCaptures, match, lineStart);
        name(top!.rule.name, top!.start, end);
        open.pop();
      } else if (rule.match !== undefined) {
        name(rule.name, start, end);
        captures(rule.captures, match, lineStart);
      } else {
        captures(rule.beginCaptures, match, lineStart);
        open.push({ rule, start });
      }
      position = match.index + match[0].length;
      // A zero-width end pops a rule, which is progress; anything else zero-width must move on.
      if (match[0].length === 0 && rule !== undefined) position++;
    }
    lineStart += line.length + 1;
  }
  for (const { rule, start } of open.reverse()) name(rule.name, start, text.length);
  return regions;
}

function flatten(grammarToRun: TextMateGrammar, patterns: readonly TextMateRule[]): TextMateRule[] {
  return patterns.flatMap((rule) => {
    if (rule.include === undefined) return [rule];
    if (rule.include === "$self") return flatten(grammarToRun, grammarToRun.patterns);
    const target = grammarToRun.repository[rule.include.replace(/^#/, "")];
    if (target === undefined) throw new Error(`unknown include ${rule.include}`);
    return target.match !== undefined || target.begin !== undefined ? [target] : flatten(grammarToRun, target.patterns ?? []);
  });
}

const compiled = new Map<string, RegExp>();

function search(pattern: string, line: string, from: number): RegExpExecArray | null {
  let regex = compiled.get(pattern);
  if (regex === undefined) {
    regex = new RegExp(pattern, "dg");
    compiled.set(pattern, regex);
  }
  regex.lastIndex = from;
  return regex.exec(line);
}
