/**
 * Where a JSON text first goes wrong. `JSON.parse` says what it disliked but, depending on
 * the V8 version, not always where ("Unexpected token ']', ..."), and quotes the whole text
 * in its message; a user fixing a schema file wants "line 3, column 20". This is a plain
 * recursive-descent reader of RFC 8259 that stops at the first problem. It is only consulted
 * after `JSON.parse` has failed, so it need not build a value.
 */

export interface JsonSyntaxError {
  /** 1-based. */
  readonly line: number;
  readonly column: number;
  readonly problem: string;
}

class Stop extends Error {
  constructor(
    readonly offset: number,
    readonly problem: string,
  ) {
    super(problem);
  }
}

export function findJsonSyntaxError(text: string): JsonSyntaxError | undefined {
  let i = 0;
  const fail = (problem: string): never => {
    throw new Stop(i, problem);
  };
  const found = (): string => (i >= text.length ? "the end of the file" : JSON.stringify(text[i]));
  const space = () => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++;
  };
  const expect = (char: string, what: string) => {
    space();
    if (text[i] !== char) fail(`expected ${what}, found ${found()}`);
    i++;
  };
  const string = () => {
    i++; // the opening quote
    while (i < text.length && text[i] !== '"') {
      const c = text[i]!;
      if (c < " ") fail("a control character (such as a line break) inside a string");
      if (c === "\\") {
        const next = text[i + 1];
        if (next === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail("\\u needs four hex digits");
          i += 6;
          continue;
        }
        if (next === undefined || !'"\\/bfnrt'.includes(next)) fail(`unknown escape \\${next ?? ""}`);
        i += 2;
        continue;
      }
      i++;
    }
    if (i >= text.length) fail("unterminated string");
    i++;
  };
  const value = (): void => {
    space();
    const c = text[i];
    if (c === "{") {
      i++;
      space();
      if (text[i] === "}") {
        i++;
        return;
      }
      for (;;) {
        space();
        if (text[i] !== '"') fail(`expected a property name in double quotes, found ${found()}`);
        string();
        expect(":", '":"');
        value();
        space();
        if (text[i] === ",") {
          i++;
          space();
          if (text[i] === "}") fail('a "," before "}" (JSON allows no trailing comma)');
          continue;
        }
        if (text[i] === "}") {
          i++;
          return;
        }
        fail(`expected "," or "}", found ${found()}`);
      }
    }
    if (c === "[") {
      i++;
      space();
      if (text[i] === "]") {
        i++;
        return;
      }
      for (;;) {
        value();
        space();
        if (text[i] === ",") {
          i++;
          space();
          if (text[i] === "]") fail('a "," before "]" (JSON allows no trailing comma)');
          continue;
        }
        if (text[i] === "]") {
          i++;
          return;
        }
        fail(`expected "," or "]", found ${found()}`);
      }
    }
    if (c === '"') return string();
    const literal = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i, i + 400));
    if (literal !== null && literal[0] !== "") {
      i += literal[0].length;
      return;
    }
    fail(`expected a value, found ${found()}`);
  };
  try {
    if (text.charCodeAt(0) === 0xfeff) i = 1;
    value();
    space();
    if (i < text.length) fail(`unexpected ${found()} after the end of the value`);
    return undefined;
  } catch (error) {
    if (!(error instanceof Stop)) return undefined; // nested too deep to follow: the caller has JSON.parse's word
    const before = text.slice(0, error.offset);
    const line = before.split("\n").length;
    const column = error.offset - (before.lastIndexOf("\n") + 1) + 1;
    return { line, column, problem: error.problem };
  }
}
