#!/usr/bin/env node
/**
 * `dts check|plan|verify|status|drop FILE.dts` — the tools around a pipeline file.
 *
 * Exit codes: 0 success (warnings allowed), 1 the pipeline has errors (for verify: a copy
 * differs; for drop: it is running, or refused), 2 bad usage, 3 a server could not be reached
 * or answered with an error, 4 (verify) something could not be verified. Diagnostics go to
 * stderr, results to stdout; no input produces a stack trace. Every command takes --help, and
 * `dts --version` prints the version.
 */
import { readFile } from "node:fs/promises";
import { compileText } from "../compile.js";
import { renderDiagnostics, summarize } from "../diagnostics/render.js";
import { printPlanDot, printPlanJson, printPlanMermaid } from "../plan/print.js";
import { describeOptions, dtsVersion, parseCommandLine, type OptionTable } from "./command-line.js";
import { DtsError, EXIT, exitCodeOf } from "../diagnostics/errors.js";

interface Command {
  /** The arguments after the command's name. */
  readonly synopsis: string;
  readonly summary: string;
  /** More lines for `dts COMMAND --help`. */
  readonly details: string;
  readonly options: OptionTable;
  readonly files: "one" | "several";
  run(files: readonly string[], values: Readonly<Record<string, string | boolean | undefined>>): Promise<number>;
}

const commands: Readonly<Record<string, Command>> = {
  check: {
    synopsis: "FILE.dts... [--live]",
    summary: "parse and check each file, print diagnostics",
    details: `Prints each file's diagnostics on stderr and one line per file on stdout. With --live, also
asks the servers what each connector declares: the sources' table schemas (column names
are then checked), and their preflight checks (server settings, privileges, keys), each
finding with its DTS code and a fix. Exit 0 without errors, 1 with, 2 bad usage or an
unreadable file, 3 (--live) a server could not be reached.`,
    options: { live: { type: "boolean", description: "also check against the servers (table schemas, settings, privileges)" } },
    files: "several",
    run: (files, values) => check(files, values.live === true),
  },
  plan: {
    synopsis: "FILE.dts [--format json|dot|mermaid]",
    summary: "print the compiled plan, or its graph",
    details: "Exit 0, or 1 with the diagnostics when the file has an error.",
    options: { format: { type: "string", value: "FORMAT", description: "json (the default), dot or mermaid" } },
    files: "one",
    run: (files, values) => plan(files[0]!, values.format),
  },
  verify: {
    synopsis: "FILE.dts [--skip-unverifiable] [--max-keys N]",
    summary: "compare every table in every sink with its source",
    details: `Each flow's source tables are compared with their copies in each of its sinks: row counts and
checksums computed inside each database, then the differing keys (--max-keys of them).
Same types compare exactly; different types or engines in a canonical form, and the report
says which. A sink, flow or column that cannot be compared is named. Exit 0 when every
copy is equal, 1 when one differs, 4 when something could not be verified (0 with
--skip-unverifiable), 3 when a server (or a DuckDB file in use) cannot be read.`,
    options: {
      "skip-unverifiable": { type: "boolean", description: "exit 0 even when a sink, flow or column could not be verified (they are still listed)" },
      "max-keys": { type: "string", value: "N", description: "differing keys listed per table (default 20)" },
    },
    files: "one",
    run: (files, values) => {
      const maxKeys = values["max-keys"] === undefined ? 20 : Number(values["max-keys"]);
      if (!Number.isInteger(maxKeys) || maxKeys < 0) return Promise.resolve(fail(`--max-keys is a whole number, not ${String(values["max-keys"])}`, "verify"));
      return import("./verify.js").then((tool) => tool.run(files[0]!, { skipUnverifiable: values["skip-unverifiable"] === true, maxKeys }));
    },
  },
  status: {
    synopsis: "FILE.dts",
    summary: "per source: checkpoint, position, lag, retained WAL",
    details: "Exit 0, 1 for an invalid pipeline, 3 when a server cannot be reached.",
    options: {},
    files: "one",
    run: async (files) => (await import("./status.js")).run(files[0]!),
  },
  drop: {
    synopsis: "FILE.dts [--yes]",
    summary: "remove a pipeline's slots, publications and checkpoint",
    details: `Lists what the pipeline keeps — each source's replication slot and publication (through its
connector), and the pipeline's checkpoint — then removes it: after asking on a terminal, or
at once with --yes. Refused while the pipeline runs (its lock is held). Exit 0 when done or
when nothing is left, 1 when refused, 2 without --yes and without a terminal, 3 on a server error.`,
    options: { yes: { type: "boolean", short: "y", description: "remove without asking" } },
    files: "one",
    run: async (files, values) => (await import("./drop.js")).run(files[0]!, { yes: values.yes === true }),
  },
};

function usage(): string {
  const lines = [
    ...Object.entries(commands).map(([name, command]) => [`dts ${name} ${command.synopsis}`, command.summary] as const),
    ["dts --version", "print the version"] as const,
  ];
  const width = Math.max(...lines.map(([synopsis]) => synopsis.length));
  return [
    "usage:",
    ...lines.map(([synopsis, summary]) => `  ${synopsis.padEnd(width)}  ${summary}`),
    "",
    "Every command takes --help (-h). Exit codes: docs/running.md.",
  ].join("\n");
}

function commandHelp(name: string, command: Command): string {
  return `usage: dts ${name} ${command.synopsis}\n\n${command.summary}.\n\n${command.details}\n\noptions:\n${describeOptions(command.options)}`;
}

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) return fail("no command given");
  if (name === "--help" || name === "-h" || name === "help") {
    const topic = name === "help" ? rest[0] : undefined;
    const command = topic === undefined ? undefined : commands[topic];
    process.stdout.write(`${command === undefined ? usage() : commandHelp(topic!, command)}\n`);
    return 0;
  }
  if (name === "--version" || name === "-V" || name === "version") {
    process.stdout.write(`dts ${dtsVersion()}\n`);
    return 0;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (command === undefined) return fail(name.startsWith("-") ? `unknown option ${name}; a command comes first` : `unknown command "${name}"`);
  const parsed = parseCommandLine(rest, command.options);
  switch (parsed.kind) {
    case "help":
      process.stdout.write(`${commandHelp(name, command)}\n`);
      return 0;
    case "version":
      process.stdout.write(`dts ${dtsVersion()}\n`);
      return 0;
    case "usage-error":
      return fail(parsed.message, name);
    case "run":
      if (parsed.positionals.length === 0) return fail(command.files === "one" ? `dts ${name} takes one pipeline file` : `dts ${name} needs a pipeline file`, name);
      if (command.files === "one" && parsed.positionals.length > 1) return fail(`dts ${name} takes one pipeline file`, name);
      return command.run(parsed.positionals, parsed.values);
  }
}

function fail(message: string, command?: string): number {
  const help = command === undefined ? usage() : `usage: dts ${command} ${commands[command]!.synopsis}  (dts ${command} --help for more)`;
  process.stderr.write(`dts: ${message}\n${help}\n`);
  return 2;
}

async function check(files: readonly string[], live: boolean): Promise<number> {
  let failed = false;
  let unreadable = false;
  for (const file of files) {
    const text = await readOrReport(file);
    if (text === undefined) {
      unreadable = true;
      continue;
    }
    let diagnostics;
    let liveSummary = "";
    if (live) {
      let result;
      try {
        result = await (await import("./live.js")).checkLive(file, text);
      } catch (error) {
        if (!(error instanceof DtsError)) throw error;
        process.stderr.write(`dts check --live: ${error.message}\n`);
        return exitCodeOf(error);
      }
      diagnostics = result.diagnostics;
      const notChecked = result.notChecked.length === 0 ? "" : `; not checked live: ${result.notChecked.join(", ")}`;
      liveSummary = result.checked ? `; checked live: ${result.asked.join(", ") || "nothing"}${notChecked}` : "";
    } else {
      diagnostics = compileText(text, file).diagnostics;
    }
    const rendered = renderDiagnostics(diagnostics, { path: file, text });
    if (rendered !== "") process.stderr.write(`${rendered}\n\n`);
    const errors = diagnostics.some((d) => d.severity === "error");
    failed ||= errors;
    process.stdout.write(`${file}: ${errors ? "failed" : "ok"} (${summarize(diagnostics)}${liveSummary})\n`);
  }
  return unreadable ? 2 : failed ? 1 : 0;
}

async function plan(file: string, format: string | boolean | undefined): Promise<number> {
  const chosen = format ?? "json";
  if (chosen !== "json" && chosen !== "dot" && chosen !== "mermaid") return fail(`--format is json, dot or mermaid, not ${String(chosen)}`, "plan");
  const text = await readOrReport(file);
  if (text === undefined) return 2;
  const result = compileText(text, file);
  if (result.rendered !== "") process.stderr.write(`${result.rendered}\n\n`);
  if (result.plan === undefined) {
    process.stderr.write(`${file}: failed (${summarize(result.diagnostics)})\n`);
    return 1;
  }
  const printer = { json: printPlanJson, dot: printPlanDot, mermaid: printPlanMermaid }[chosen];
  process.stdout.write(printer(result.plan));
  return 0;
}

async function readOrReport(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a folder; name the .dts file" : code === "EACCES" ? "permission denied" : (error as Error).message;
    process.stderr.write(`dts: cannot read ${file}: ${reason}\n`);
    return undefined;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`dts: internal error: ${(error as Error).message}\n`);
    process.exitCode = EXIT.internal;
  },
);
