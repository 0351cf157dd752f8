/**
 * The built `dts` command as a user runs it: exit codes, the `FILE:LINE:COL: error DTSnnnn:`
 * form of diagnostics, the graph formats of `dts plan`, and one-line messages (never a stack
 * trace) for bad usage and missing files. `npm test` builds dist/ before vitest runs.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { compileText } from "../../src/compile.js";

const root = path.resolve(import.meta.dirname, "../..");
const cli = path.join(root, "dist/src/cli/dts.js");
const pipelines = readdirSync(path.join(root, "pipelines")).filter((name) => name.endsWith(".dts")).sort();

function dts(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: "utf8", timeout: 30_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The same, without waiting: the graph checks run every pipeline at once. */
function dtsAsync(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd: root });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

function expectNoStackTrace(output: string): void {
  expect(output).not.toMatch(/\n\s+at .+[:(]\d+:\d+\)?/);
  expect(output).not.toMatch(/internal error|TypeError|RangeError|ReferenceError/);
}

describe("dts (built CLI)", () => {
  it("is built", () => {
    expect(existsSync(cli), `${cli} is missing: run npm run build`).toBe(true);
  });

  it("check exits 0 on every pipeline, one ok line per file", () => {
    expect(pipelines.length).toBeGreaterThan(0);
    const result = dts("check", ...pipelines.map((name) => `pipelines/${name}`));
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe(pipelines.map((name) => `pipelines/${name}: ok (0 errors, 0 warnings)\n`).join(""));
    expect(result.status).toBe(0);
  });

  it("check exits 0 on a single pipeline", () => {
    const result = dts("check", "pipelines/quickstart.dts");
    expect(result.status).toBe(0);
    expect(result.stderr).toBe("");
  });

  it("check exits 1 on an error case and prints FILE:LINE:COL: error DTSnnnn: lines with a caret", () => {
    const file = "test/golden/errors/several-mistakes-at-once.dts";
    const result = dts("check", file);
    expect(result.status).toBe(1);
    const headers = result.stderr.split("\n").filter((line) => line.startsWith(`${file}:`));
    expect(headers).toHaveLength(3);
    for (const header of headers) expect(header).toMatch(/^test\/golden\/errors\/several-mistakes-at-once\.dts:\d+:\d+: error DTS\d{4}: \S/);
    expect(headers[0]).toMatch(/:5:13: error DTS1002: /);
    expect(result.stderr).toMatch(/\n\s+\| +\^+\n/);
    expect(result.stdout).toBe(`${file}: failed (3 errors, 0 warnings)\n`);
    expectNoStackTrace(result.stderr);
  });

  it("check exits 0 when there are only warnings, and prints them", () => {
    const result = dts("check", "test/golden/errors/unused-declarations.dts");
    expect(result.status).toBe(0);
    expect(result.stderr).toMatch(/^test\/golden\/errors\/unused-declarations\.dts:1:5: warning DTS2007: let "region" is never used$/m);
    expect(result.stdout).toMatch(/: ok \(0 errors, 3 warnings\)/);
  });

  it("check exits 1 when any of several files fails", () => {
    const result = dts("check", "pipelines/quickstart.dts", "test/golden/errors/missing-arrow.dts");
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/quickstart\.dts: ok/);
    expect(result.stdout).toMatch(/missing-arrow\.dts: failed \(1 error, 0 warnings\)/);
  });

  it("plan prints the canonical JSON of a pipeline", () => {
    const result = dts("plan", "pipelines/quickstart.dts");
    expect(result.status).toBe(0);
    const plan = JSON.parse(result.stdout) as { dts_plan: number; pipeline: { name: string } };
    expect(plan.dts_plan).toBe(1);
    expect(plan.pipeline.name).toBe("quickstart");
  });

  it("plan exits 1 with the diagnostics on a broken pipeline", () => {
    const result = dts("plan", "test/golden/errors/missing-arrow.dts");
    expect(result.status).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/missing-arrow\.dts:6:3: error DTS1006: /);
  });

  it.each(["dot", "mermaid"] as const)("plan --format %s draws every source and sink of every pipeline", async (format) => {
    const results = await Promise.all(pipelines.map((name) => dtsAsync("plan", `pipelines/${name}`, "--format", format)));
    results.forEach((result, index) => {
      const file = path.join(root, "pipelines", pipelines[index]!);
      expect(result.stderr, file).toBe("");
      expect(result.status, file).toBe(0);
      expect(result.stdout).toMatch(format === "dot" ? /^digraph "[^"]+" \{\n[^]*\}\n$/ : /^flowchart LR\n/);
      // The same file, compiled in-process, says which names the picture must show.
      const { plan } = compileText(readFileSync(file, "utf8"), file);
      expect(plan, file).toBeDefined();
      for (const node of [...plan!.sources, ...plan!.sinks]) expect(result.stdout, file).toContain(`${node.name} (${node.connector})`);
      const edges = result.stdout.split("\n").filter((line) => line.includes(format === "dot" ? " -> " : " --> "));
      const steps = plan!.flows.reduce((n, flow) => n + flow.steps.length, 0);
      const sinkEdges = plan!.flows.reduce((n, flow) => n + flow.sinks.length, 0);
      expect(edges.length, file).toBeGreaterThanOrEqual(steps + sinkEdges);
    });
  });

  it("--format dot quotes labels, so step text with quotes stays valid", () => {
    const result = dts("plan", "pipelines/message-notification.dts", "--format", "dot");
    expect(result.stdout).toContain('label="filter table == \\"public.payments\\"');
    expect(result.stdout.trim().endsWith("}")).toBe(true);
  });

  it.each([
    [[], /no command given/],
    [["frob"], /unknown command "frob"/],
    [["check"], /needs a pipeline file/],
    [["plan"], /takes one pipeline file/],
    [["plan", "pipelines/quickstart.dts", "pipelines/cache-update.dts"], /takes one pipeline file/],
    [["plan", "pipelines/quickstart.dts", "--format", "xml"], /--format is json, dot or mermaid/],
    [["check", "--bogus", "pipelines/quickstart.dts"], /unknown option --bogus/],
  ])("bad usage %j exits 2 with usage", (args, message) => {
    const result = dts(...(args as string[]));
    expect(result.status).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(message as RegExp);
    expect(result.stderr).toMatch(/usage:/);
    expectNoStackTrace(result.stderr);
  });

  it("every command has --help (its usage and options, exit 0); the usage lists every command and option", async () => {
    const commands = { check: ["--live"], plan: ["--format"], verify: ["--skip-unverifiable", "--max-keys"], status: [], drop: ["--yes"] };
    const usage = dts("--help").stdout;
    // Each --help once, and -h for one of them: every spawn costs a second or two on a busy machine.
    const helps = await Promise.all(Object.keys(commands).map((command, index) => dtsAsync(command, index === 0 ? "-h" : "--help")));
    Object.entries(commands).forEach(([command, options], index) => {
      expect(usage).toMatch(new RegExp(`^  dts ${command} FILE\\.dts`, "m"));
      for (const help of [helps[index]!]) {
        expect(help.status).toBe(0);
        expect(help.stderr).toBe("");
        expect(help.stdout).toMatch(new RegExp(`^usage: dts ${command} FILE\\.dts`));
        for (const option of [...options, "--help", "--version"]) expect(help.stdout, `${command} --help`).toContain(option);
      }
      for (const option of options) expect(usage, `the usage lists ${option}`).toContain(option);
    });
  });

  it("--version prints the package's version, for dts and for each command", async () => {
    const { version } = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { version: string };
    const results = await Promise.all([dtsAsync("--version"), dtsAsync("verify", "-V")]);
    for (const result of results) {
      expect(result.status).toBe(0);
      expect(result.stdout).toBe(`dts ${version}\n`);
    }
  });

  it("an unknown option of any command exits 2, naming it, with the command's usage", async () => {
    const cases = [
      [["verify", "pipelines/quickstart.dts", "--frob"], "unknown option --frob", "verify"],
      [["status", "--bogus", "pipelines/quickstart.dts"], "unknown option --bogus", "status"],
      [["drop", "pipelines/quickstart.dts", "--force"], "unknown option --force", "drop"],
      [["check", "-x", "pipelines/quickstart.dts"], "unknown option -x", "check"],
      [["plan", "pipelines/quickstart.dts", "--format"], "--format needs a value", "plan"],
      [["check", "--live=yes", "pipelines/quickstart.dts"], "--live takes no value", "check"],
      [["verify", "pipelines/quickstart.dts", "--max-keys", "many"], "--max-keys is a whole number, not many", "verify"],
      [["--frob"], "unknown option --frob; a command comes first", undefined],
    ] as const;
    const results = await Promise.all(cases.map(([args]) => dtsAsync(...args)));
    results.forEach((result, index) => {
      const [args, message, command] = cases[index]!;
      expect(result.status, args.join(" ")).toBe(2);
      expect(result.stdout).toBe("");
      expect(result.stderr).toContain(`dts: ${message}\n`);
      expect(result.stderr).toMatch(command === undefined ? /usage:\n/ : new RegExp(`usage: dts ${command} `));
      expectNoStackTrace(result.stderr);
    });
  });

  it("help exits 0 and prints usage on stdout", () => {
    const result = dts("--help");
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^usage:/);
  });

  it.each([["check"], ["plan"]])("%s on a missing file exits 2 with one clear line", (command) => {
    const result = dts(command, "no/such/pipeline.dts");
    expect(result.status).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe("dts: cannot read no/such/pipeline.dts: no such file\n");
  });

  it("check on a folder exits 2 with one line", () => {
    const result = dts("check", "pipelines");
    expect(result.status).toBe(2);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expectNoStackTrace(result.stderr);
  });
});

