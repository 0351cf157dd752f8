/**
 * The one door to chevrotain. Its package entry (`lib/src/api.js`) loads lodash-es as hundreds
 * of separate modules: about 200 ms at every start of `dts` and `dts-run`, more than the rest
 * of start-up together. The package also publishes the same build in one file
 * (`lib/chevrotain.mjs`, listed in its "files" though not in its "exports"), which loads in
 * about 15 ms, so everything is taken from there.
 *
 * Every runtime use of chevrotain goes through this module, never through "chevrotain" itself:
 * token types get their ids from the copy that created them, and grammar classes are checked
 * with `instanceof`, so two copies in one process would not recognize each other's objects.
 * Types come from the package as usual (they are the same).
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

type Chevrotain = typeof import("chevrotain");

const entry = createRequire(import.meta.url).resolve("chevrotain");
const chevrotain = (await import(pathToFileURL(join(dirname(entry), "..", "chevrotain.mjs")).href)) as Chevrotain;

export const {
  Alternation,
  Alternative,
  CstParser,
  EOF,
  Lexer,
  NonTerminal,
  Option,
  Repetition,
  RepetitionMandatory,
  RepetitionMandatoryWithSeparator,
  RepetitionWithSeparator,
  Rule,
  Terminal,
  createSyntaxDiagramsCode,
  createToken,
  generateCstDts,
  tokenMatcher,
} = chevrotain;

// The classes are types as well.
type C = Chevrotain;
export type Alternation = InstanceType<C["Alternation"]>;
export type Alternative = InstanceType<C["Alternative"]>;
export type CstParser = InstanceType<C["CstParser"]>;
export type Lexer = InstanceType<C["Lexer"]>;
export type NonTerminal = InstanceType<C["NonTerminal"]>;
export type Option = InstanceType<C["Option"]>;
export type Repetition = InstanceType<C["Repetition"]>;
export type RepetitionMandatory = InstanceType<C["RepetitionMandatory"]>;
export type RepetitionMandatoryWithSeparator = InstanceType<C["RepetitionMandatoryWithSeparator"]>;
export type RepetitionWithSeparator = InstanceType<C["RepetitionWithSeparator"]>;
export type Rule = InstanceType<C["Rule"]>;
export type Terminal = InstanceType<C["Terminal"]>;

export type {
  CstNode,
  ICstVisitor,
  IParserErrorMessageProvider,
  IProduction,
  IRecognitionException,
  ISerializedGast,
  IToken,
  TokenType,
} from "chevrotain";
