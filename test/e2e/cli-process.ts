/**
 * Running the built CLI (`dist/src/cli/dts-run.js`) in a child process. The e2e tests run
 * what a user runs, so they need the build: `npm test` builds first (`npm run build`); when
 * running vitest directly, run `npx tsc -p tsconfig.json` before.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const CLI = resolve("dist/src/cli/dts-run.js");

export function requireBuild(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -p tsconfig.json; npm test does it)`);
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
  /** Resolves once stderr contains `text` (a log message), or when the process ends. */
  stderrContains(text: string): Promise<void>;
}

/** Starts `dts-run ARGS` in `cwd`; stdin closed, output collected. */
export function startCli(args: readonly string[], options: { cwd: string; env?: Record<string, string> }): Running {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const done = new Promise<Finished>((resolve) => {
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
      void done.then(() => resolve());
      check();
    });
  return { child, done, stderrContains };
}

export function runCli(args: readonly string[], options: { cwd: string; env?: Record<string, string> }): Promise<Finished> {
  return startCli(args, options).done;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
