/**
 * `grammar/dts.tmLanguage.json`: a TextMate grammar, for editors (VS Code, Sublime, GitHub's
 * highlighter). Everything it can take from the lexer and the parser it takes from them: the
 * keywords and operators from src/syntax/tokens.ts, the kind of each keyword from where the
 * grammar uses it (declaration, step, value or operator), the connector names from the
 * registry. A keyword, operator or connector added there appears here at the next
 * `npm run gen`.
 *
 * TextMate grammars are matched by Oniguruma, tests here run them with JavaScript: every
 * pattern keeps to what both engines read alike (no `\w`, `\d` or `\b`, which Oniguruma
 * extends to Unicode; lookbehind only of fixed width).
 *
 * A string holds `${...}` interpolations with whole expressions, strings included, as the
 * lexer's `scanString` does; like the lexer, a string or an interpolation that is not closed
 * ends at the end of its line.
 */
import {
  Alternation,
  Alternative,
  NonTerminal,
  Option,
  Repetition,
  RepetitionMandatory,
  RepetitionMandatoryWithSeparator,
  RepetitionWithSeparator,
  Terminal,
  type IProduction,
  type Rule,
  type TokenType,
} from "../../src/syntax/chevrotain.js";
import { connectorNames } from "../../src/connectors/registry.js";
import { DtsParser } from "../../src/syntax/parser.js";
import * as tokens from "../../src/syntax/tokens.js";
import type { GeneratedFile } from "../generated.js";
import { builtinFunctionNames } from "./builtin-functions.js";
import { literalText, skippedTokens } from "./terminals.js";

export interface TextMateRule {
  readonly comment?: string;
  readonly name?: string;
  readonly contentName?: string;
  readonly match?: string;
  readonly begin?: string;
  readonly end?: string;
  readonly captures?: Captures;
  readonly beginCaptures?: Captures;
  readonly endCaptures?: Captures;
  readonly patterns?: readonly TextMateRule[];
  readonly include?: string;
}

export type Captures = Readonly<Record<string, { readonly name: string }>>;

export interface TextMateGrammar {
  readonly comment: string;
  readonly name: string;
  readonly scopeName: string;
  readonly fileTypes: readonly string[];
  readonly patterns: readonly TextMateRule[];
  readonly repository: Readonly<Record<string, TextMateRule>>;
}

/** The keywords by the scope they are highlighted with, in the order of `keywordTokens`. */
export interface KeywordClasses {
  /** Start a top-level declaration: `keyword.other`. */
  readonly declaration: readonly string[];
  /** Start a step after `|`: `keyword.control`. */
  readonly step: readonly string[];
  /** A value on their own (`true`): `constant.language`. */
  readonly constant: readonly string[];
  /** Used inside expressions (`and`, `in`): `keyword.operator.word`. */
  readonly operator: readonly string[];
  /** Any other keyword the grammar may gain: `keyword.other`. */
  readonly other: readonly string[];
}

export const keywordScopes: Readonly<Record<keyof KeywordClasses, string>> = {
  declaration: "keyword.other.declaration.dts",
  step: "keyword.control.step.dts",
  constant: "constant.language.dts",
  operator: "keyword.operator.word.dts",
  other: "keyword.other.dts",
};

/** Scopes of the fixed-text tokens that are not keywords; a new one gets `keyword.operator.dts`. */
const operatorScopes: Readonly<Record<string, string>> = {
  Arrow: "keyword.operator.arrow.dts",
  Pipe: "keyword.operator.pipe.dts",
  Spread: "keyword.operator.spread.dts",
  Coalesce: "keyword.operator.logical.dts",
  EqualEqual: "keyword.operator.comparison.dts",
  NotEqual: "keyword.operator.comparison.dts",
  LessEqual: "keyword.operator.comparison.dts",
  GreaterEqual: "keyword.operator.comparison.dts",
  Less: "keyword.operator.comparison.dts",
  Greater: "keyword.operator.comparison.dts",
  Equals: "keyword.operator.assignment.dts",
  Plus: "keyword.operator.arithmetic.dts",
  Minus: "keyword.operator.arithmetic.dts",
  Star: "keyword.operator.arithmetic.dts",
  Slash: "keyword.operator.arithmetic.dts",
  Percent: "keyword.operator.arithmetic.dts",
  LParen: "punctuation.section.parens.begin.dts",
  RParen: "punctuation.section.parens.end.dts",
  LCurly: "punctuation.section.braces.begin.dts",
  RCurly: "punctuation.section.braces.end.dts",
  LBracket: "punctuation.section.brackets.begin.dts",
  RBracket: "punctuation.section.brackets.end.dts",
  Comma: "punctuation.separator.comma.dts",
  Colon: "punctuation.separator.key-value.dts",
  Dot: "punctuation.accessor.dts",
};

const commentScopes: Readonly<Record<string, string>> = {
  HashComment: "comment.line.number-sign.dts",
  SlashComment: "comment.line.double-slash.dts",
};

export function textmateFile(): GeneratedFile[] {
  return [{ path: "grammar/dts.tmLanguage.json", content: JSON.stringify(textmateGrammar(), null, 2) + "\n" }];
}

export function textmateGrammar(): TextMateGrammar {
  const rules = new DtsParser().getGAstProductions();
  const classes = keywordClasses(rules);
  const name = namePatterns();
  const word = (words: readonly string[]) => `${name.before}(?:${words.map(escape).join("|")})${name.after}`;
  const keyword = (type: TokenType) => `${name.before}(${escape(literalText(type)!)})`;
  const declaredName = { name: "variable.other.constant.dts" };
  const assignment = { name: operatorScopes["Equals"]! };
  const connectorDeclaration = (type: TokenType, role: "source" | "sink"): TextMateRule => ({
    comment: `${literalText(type)} NAME = CONNECTOR; the ${role} connectors come from src/connectors/registry.ts`,
    match: `${keyword(type)}\\s+(${name.name})\\s*(=)\\s*(?:(${connectorNames(role).map(escape).join("|")})${name.after})?`,
    captures: { 1: { name: keywordScopes.declaration }, 2: declaredName, 3: assignment, 4: { name: "entity.name.type.dts" } },
  });

  const comments = skippedTokens()
    .filter((type) => type !== tokens.WhiteSpace)
    .map((type) => ({ name: commentScopes[type.name] ?? "comment.line.dts", match: (type.PATTERN as RegExp).source }));

  const operators = tokens.allTokens
    .filter((type) => type.GROUP === undefined && !tokens.keywordTokens.includes(type) && literalText(type) !== undefined)
    .map((type) => ({ text: literalText(type)!, scope: operatorScopes[type.name] ?? "keyword.operator.dts" }))
    .sort((a, b) => b.text.length - a.text.length)
    .map(({ text, scope }) => ({ name: scope, match: escape(text) }));

  const valueKeywords = directKeywords(rule(rules, "nameOrCall").definition);

  return {
    comment: "Generated from src/syntax/tokens.ts and src/syntax/parser.ts by `npm run gen`. Do not edit by hand.",
    name: "dts",
    scopeName: "source.dts",
    fileTypes: ["dts"],
    patterns: [{ include: "#comments" }, { include: "#declarations" }, { include: "#expression" }],
    repository: {
      comments: { patterns: comments },
      declarations: {
        patterns: [
          {
            match: `${keyword(tokens.Pipeline)}\\s+(${name.name})`,
            captures: { 1: { name: keywordScopes.declaration }, 2: { name: "entity.name.namespace.dts" } },
          },
          connectorDeclaration(tokens.Source, "source"),
          connectorDeclaration(tokens.Sink, "sink"),
          {
            match: `${keyword(tokens.Let)}\\s+(${name.name})\\s*(=)`,
            captures: { 1: { name: keywordScopes.declaration }, 2: declaredName, 3: assignment },
          },
          {
            match: `${keyword(tokens.Flow)}\\s+(${name.name})`,
            captures: { 1: { name: keywordScopes.declaration }, 2: declaredName },
          },
        ],
      },
      expression: {
        patterns: [
          { include: "#strings" },
          { include: "#numbers" },
          { include: "#functions" },
          { include: "#event-names" },
          { include: "#properties" },
          { include: "#keywords" },
          { include: "#operators" },
        ],
      },
      strings: {
        name: "string.quoted.double.dts",
        begin: '"',
        beginCaptures: { 0: { name: "punctuation.definition.string.begin.dts" } },
        end: '"|$',
        endCaptures: { 0: { name: "punctuation.definition.string.end.dts" } },
        patterns: [{ include: "#string-escapes" }, { include: "#interpolation" }],
      },
      "string-escapes": {
        patterns: [
          {
            name: "constant.character.escape.dts",
            match: '\\\\(?:["\\\\/$ntr0]|u\\{[0-9A-Fa-f]{1,6}\\}|u[0-9A-Fa-f]{4})',
          },
          { name: "invalid.illegal.escape.dts", match: "\\\\." },
        ],
      },
      interpolation: {
        name: "meta.interpolation.dts",
        contentName: "meta.embedded.expression.dts",
        begin: "\\$\\{",
        beginCaptures: { 0: { name: "punctuation.section.interpolation.begin.dts" } },
        end: "\\}|$",
        endCaptures: { 0: { name: "punctuation.section.interpolation.end.dts" } },
        patterns: [{ include: "#interpolation-braces" }, { include: "#expression" }],
      },
      "interpolation-braces": {
        comment: "Braces inside an interpolation nest, so a record's } does not end it.",
        begin: "\\{",
        beginCaptures: { 0: { name: operatorScopes["LCurly"]! } },
        end: "\\}|$",
        endCaptures: { 0: { name: operatorScopes["RCurly"]! } },
        patterns: [{ include: "#interpolation-braces" }, { include: "#expression" }],
      },
      numbers: {
        name: "constant.numeric.dts",
        match: name.before + (tokens.NumberLiteral.PATTERN as RegExp).source.replace(/\\d/g, "[0-9]"),
      },
      functions: {
        comment: "Built-in functions, from scripts/grammar/builtin-functions.ts",
        match: `${name.before}(${[...builtinFunctionNames].sort().map(escape).join("|")})(?=\\s*\\()`,
        captures: { 1: { name: "support.function.builtin.dts" } },
      },
      "event-names": {
        comment: "Keywords that also name a field of the event, when used as a record: source.table",
        patterns: valueKeywords.length === 0 ? [] : [{ name: "variable.language.dts", match: `${word(valueKeywords)}(?=\\s*[.\\[])` }],
      },
      properties: {
        patterns: [
          {
            comment: "A member after a dot is a name, even when it is spelled like a keyword: row.in",
            match: `(\\.)\\s*(${name.name})`,
            captures: { 1: { name: operatorScopes["Dot"]! }, 2: { name: "variable.other.property.dts" } },
          },
          {
            comment: "A record key is a name, even when it is spelled like a keyword: { map: 1 }",
            match: `${name.before}(${name.name})\\s*(?=:)`,
            captures: { 1: { name: "variable.other.property.dts" } },
          },
        ],
      },
      keywords: {
        patterns: (Object.keys(keywordScopes) as (keyof KeywordClasses)[])
          .filter((kind) => classes[kind].length > 0)
          .map((kind) => ({ name: keywordScopes[kind], match: word(classes[kind]) })),
      },
      operators: { patterns: operators },
    },
  };
}

/**
 * Sorts the keywords by where the parser uses them: the first token of a declaration, the
 * first token after a step's `|`, a whole alternative of `primary`, or anywhere in an
 * expression. A keyword in two places (`source` starts a declaration and names the event's
 * source record) takes the first of those.
 */
export function keywordClasses(rules: Record<string, Rule> = new DtsParser().getGAstProductions()): KeywordClasses {
  const keywords = tokens.keywordTokens;
  const step = rule(rules, "step").definition;
  const pipe = step[0];
  if (!(pipe instanceof Terminal) || pipe.terminalType !== tokens.Pipe) throw new Error("a step no longer starts with |");
  const primary = rule(rules, "primary").definition;
  const primaryAlternatives = primary.length === 1 && primary[0] instanceof Alternation ? primary[0].definition : [];
  const constants = primaryAlternatives.flatMap((alternative) => {
    const only = alternative instanceof Alternative && alternative.definition.length === 1 ? alternative.definition[0] : undefined;
    return only instanceof Terminal ? [only.terminalType] : [];
  });

  const sets: [keyof KeywordClasses, Set<TokenType>][] = [
    ["declaration", firstTokens(rule(rules, "declaration").definition).first],
    ["step", firstTokens(step.slice(1)).first],
    ["constant", new Set(constants)],
    ["operator", tokensReachable(rule(rules, "expression"))],
  ];
  const result: Record<keyof KeywordClasses, string[]> = { declaration: [], step: [], constant: [], operator: [], other: [] };
  for (const type of keywords) {
    const kind = sets.find(([, members]) => members.has(type))?.[0] ?? "other";
    result[kind].push(literalText(type)!);
  }
  return result;
}

function rule(rules: Record<string, Rule>, name: string): Rule {
  const found = rules[name];
  if (found === undefined) throw new Error(`the parser has no rule "${name}"; update scripts/grammar/textmate.ts`);
  return found;
}

/** The tokens a sequence can start with, and whether it can match nothing. */
function firstTokens(productions: readonly IProduction[]): { first: Set<TokenType>; empty: boolean } {
  const first = new Set<TokenType>();
  for (const production of productions) {
    const next = firstOf(production);
    next.first.forEach((type) => first.add(type));
    if (!next.empty) return { first, empty: false };
  }
  return { first, empty: true };
}

function firstOf(production: IProduction): { first: Set<TokenType>; empty: boolean } {
  if (production instanceof Terminal) return { first: new Set([production.terminalType]), empty: false };
  if (production instanceof NonTerminal) return firstTokens(production.referencedRule.definition);
  if (production instanceof Option || production instanceof Repetition || production instanceof RepetitionWithSeparator) {
    return { first: firstTokens(production.definition).first, empty: true };
  }
  if (production instanceof Alternation) {
    const alternatives = production.definition.map(firstOf);
    const first = new Set(alternatives.flatMap((alternative) => [...alternative.first]));
    return { first, empty: alternatives.some((alternative) => alternative.empty) };
  }
  if (
    production instanceof Alternative ||
    production instanceof RepetitionMandatory ||
    production instanceof RepetitionMandatoryWithSeparator
  ) {
    return firstTokens(production.definition);
  }
  throw new Error(`unknown GAST production ${production.constructor.name}`);
}

/** Every token the rule and the rules it uses can consume. */
function tokensReachable(start: Rule): Set<TokenType> {
  const found = new Set<TokenType>();
  const visited = new Set<string>();
  const visit = (productions: readonly IProduction[]): void => {
    for (const production of productions) {
      if (production instanceof Terminal) found.add(production.terminalType);
      else if (production instanceof NonTerminal) {
        if (!visited.has(production.nonTerminalName)) {
          visited.add(production.nonTerminalName);
          visit(production.referencedRule.definition);
        }
      } else visit(children(production));
    }
  };
  visited.add(start.name);
  visit(start.definition);
  return found;
}

/** The keywords a rule consumes itself, not through the rules it uses. */
function directKeywords(productions: readonly IProduction[]): string[] {
  const found = new Set<TokenType>();
  const visit = (production: IProduction): void => {
    if (production instanceof Terminal) found.add(production.terminalType);
    else children(production).forEach(visit);
  };
  productions.forEach(visit);
  return tokens.keywordTokens.filter((type) => found.has(type)).map((type) => literalText(type)!);
}

/** What a production holds, a separator (MANY_SEP's ",") included; nothing for a rule reference. */
function children(production: IProduction): readonly IProduction[] {
  if (production instanceof Terminal || production instanceof NonTerminal) return [];
  if (production instanceof RepetitionWithSeparator || production instanceof RepetitionMandatoryWithSeparator) {
    return [...production.definition, new Terminal({ terminalType: production.separator })];
  }
  if (
    production instanceof Option ||
    production instanceof Repetition ||
    production instanceof RepetitionMandatory ||
    production instanceof Alternation ||
    production instanceof Alternative
  ) {
    return production.definition;
  }
  throw new Error(`unknown GAST production ${production.constructor.name}`);
}

/** Identifier's pattern, `[start][rest]*`, split so that keywords can be bounded like names. */
function namePatterns(): { name: string; before: string; after: string } {
  const source = (tokens.Identifier.PATTERN as RegExp).source;
  const parts = /^(\[[^\]]+\])(\[[^\]]+\])\*$/.exec(source);
  if (parts === null) throw new Error(`Identifier's pattern ${source} is not [start][rest]*; update scripts/grammar/textmate.ts`);
  const [, start, rest] = parts as unknown as [string, string, string];
  return { name: `${start}${rest}*`, before: `(?<!${rest})`, after: `(?!${rest})` };
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
