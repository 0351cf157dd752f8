/**
 * Arguments, parsed one way for every command of `dts` and for `dts-run`: node:util's
 * parseArgs, strict (an unknown option is bad usage, exit 2), with `--help` and `--version`
 * on every command, and the help text made from the same option table the parser reads, so
 * that the usage cannot leave an option out.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

export interface OptionDoc {
  readonly type: "string" | "boolean";
  readonly short?: string;
  /** The value's name in the usage: `--format FORMAT`. */
  readonly value?: string;
  readonly description: string;
}

export type OptionTable = Readonly<Record<string, OptionDoc>>;

/** What `--help` and `--version` add to every command. */
const COMMON: OptionTable = {
  help: { type: "boolean", short: "h", description: "print this help and exit" },
  version: { type: "boolean", short: "V", description: "print the version of dts and exit" },
};

export type Parsed =
  | { readonly kind: "run"; readonly values: Readonly<Record<string, string | boolean | undefined>>; readonly positionals: readonly string[] }
  | { readonly kind: "help" }
  | { readonly kind: "version" }
  | { readonly kind: "usage-error"; readonly message: string };

export function parseCommandLine(argv: readonly string[], options: OptionTable): Parsed {
  const table = { ...options, ...COMMON };
  const config = Object.fromEntries(
    Object.entries(table).map(([name, option]) => [name, option.short === undefined ? { type: option.type } : { type: option.type, short: option.short }]),
  );
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: config, strict: true, allowPositionals: true });
  } catch (error) {
    return { kind: "usage-error", message: usageMessage(error) };
  }
  if (parsed.values.help === true) return { kind: "help" };
  if (parsed.values.version === true) return { kind: "version" };
  return { kind: "run", values: parsed.values, positionals: parsed.positionals };
}

/** parseArgs's messages, in the words of the rest of dts: `unknown option --fast`. */
function usageMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const unknown = /^Unknown option '([^']+)'/.exec(message);
  if (unknown !== null) return `unknown option ${unknown[1]}`;
  const missing = /^Option '(-\w, )?(--[\w-]+) <value>' argument missing/.exec(message);
  if (missing !== null) return `${missing[2]} needs a value`;
  const noValue = /^Option '(--[\w-]+)' does not take an argument/.exec(message);
  if (noValue !== null) return `${noValue[1]} takes no value`;
  return message;
}

/** The options of a command as its help lists them, aligned. */
export function describeOptions(options: OptionTable, indent = "  "): string {
  const entries = Object.entries({ ...options, ...COMMON }).map(([name, option]) => {
    const flag = `${option.short !== undefined ? `-${option.short}, ` : "    "}--${name}${option.value !== undefined ? ` ${option.value}` : ""}`;
    return [flag, option.description] as const;
  });
  const width = Math.max(...entries.map(([flag]) => flag.length));
  return entries.map(([flag, description]) => `${indent}${flag.padEnd(width)}  ${description}`).join("\n");
}

/** The version in package.json, read from beside the built files (dist/src/cli → the package root). */
export function dtsVersion(): string {
  for (const path of ["../../../package.json", "../../package.json"]) {
    try {
      const json: unknown = JSON.parse(readFileSync(new URL(path, import.meta.url), "utf8"));
      if (typeof json === "object" && json !== null && "name" in json && json.name === "dts" && "version" in json && typeof json.version === "string") return json.version;
    } catch {
      // not there: the other layout (sources run directly, or the built package)
    }
  }
  return "unknown";
}
