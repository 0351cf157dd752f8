/**
 * Running the built CLIs (`dist/src/cli/dts-run.js`, `dist/src/cli/dts.js`) in child
 * processes, as a user runs them: the one way every test that runs a CLI does it (test/e2e on
 * generated data, test/integration against the servers). They need the build: `npm test` and
 * `npm run test:unit` build first; running vitest directly, run `npm run build` before.
 *
 * Output is decoded as UTF-8 streams, so a character split across two reads stays whole. A
 * run awaited to its end (`runDtsRun`, `runDts`) is killed after `timeoutMs` and reported with
 * its stderr, rather than hanging until vitest's own timeout says nothing about why.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "..");
export const DTS_RUN = join(ROOT, "dist/src/cli/dts-run.js");
export const DTS = join(ROOT, "dist/src/cli/dts.js");

export function requireBuild(): void {
  for (const file of [DTS_RUN, DTS]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run npm run build (npm test builds first)`);
  }
}

export function tempFolder(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `dts-${prefix}-`));
}

export interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Running {
  readonly child: ChildProcess;
  readonly done: Promise<Finished>;
  /** stderr so far. */
  stderr(): string;
  /** Resolves once stderr contains `text` (a log message), or when the process ends. */
  stderrContains(text: string): Promise<void>;
}

export interface CliOptions {
  /** The working directory; the repository's root when absent. */
  readonly cwd?: string;
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>>;
}

export interface RunOptions extends CliOptions {
  /** Kill the run and fail after this long; 60 s when absent. */
  readonly timeoutMs?: number;
}

function start(script: string, args: readonly string[], options: CliOptions): Running {
  const child = spawn(process.execPath, [script, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const done = new Promise<Finished>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  const stderrContains = (text: string): Promise<void> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (!stderr.includes(text)) return;
        child.stderr!.off("data", check);
        resolve();
      };
      child.stderr!.on("data", check);
      void done.then(() => resolve(), () => resolve());
      check();
    });
  return { child, done, stderr: () => stderr, stderrContains };
}

async function toTheEnd(running: Running, timeoutMs: number, what: string): Promise<Finished> {
  const timer = setTimeout(() => running.child.kill("SIGKILL"), timeoutMs);
  try {
    const result = await running.done;
    if (result.signal === "SIGKILL") throw new Error(`${what} did not finish within ${timeoutMs} ms; stderr:\n${result.stderr.slice(-4000)}`);
    return result;
  } finally {
    clearTimeout(timer);
  }
}

/** Starts `dts-run ARGS`; stdin closed, output collected. */
export function startDtsRun(args: readonly string[], options: CliOptions = {}): Running {
  return start(DTS_RUN, args, options);
}

/** Runs `dts-run ARGS` to its end. */
export function runDtsRun(args: readonly string[], options: RunOptions = {}): Promise<Finished> {
  return toTheEnd(startDtsRun(args, options), options.timeoutMs ?? 60_000, `dts-run ${args.join(" ")}`);
}

/** Runs `dts ARGS` to its end. */
export function runDts(args: readonly string[], options: RunOptions = {}): Promise<Finished> {
  return toTheEnd(start(DTS, args, options), options.timeoutMs ?? 60_000, `dts ${args.join(" ")}`);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it holds; fails after `timeoutMs`, naming `what` it waited for. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
