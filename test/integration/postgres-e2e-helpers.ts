/**
 * Running the built CLIs (`dist/src/cli/dts-run.js`, `dist/src/cli/dts.js`) against throwaway
 * databases, as a user would. `npm test` builds first; running vitest alone needs a build.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const DTS_RUN = join(ROOT, "dist/src/cli/dts-run.js");
const DTS = join(ROOT, "dist/src/cli/dts.js");

export function requireBuild(): void {
  for (const file of [DTS_RUN, DTS]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run npm run build (npm test builds first)`);
  }
}

export interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Running {
  readonly child: ChildProcess;
  readonly finished: Promise<Finished>;
  /** stderr so far. */
  stderr(): string;
}

function start(script: string, args: readonly string[], env: Record<string, string>, cwd: string): Running {
  const child = spawn(process.execPath, [script, ...args], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const finished = new Promise<Finished>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, finished, stderr: () => stderr };
}

export function startDtsRun(file: string, env: Record<string, string>, args: readonly string[] = []): Running {
  return start(DTS_RUN, [file, "--log-level", "info", ...args], env, ROOT);
}

/** Runs to the end; a run still going after `timeoutMs` is killed and reported as such. */
export async function runDtsRun(file: string, env: Record<string, string>, args: readonly string[] = [], timeoutMs = 60_000): Promise<Finished> {
  return withTimeout(startDtsRun(file, env, args), timeoutMs, `dts-run ${file}`);
}

export async function runDts(args: readonly string[], env: Record<string, string>, timeoutMs = 60_000): Promise<Finished> {
  return withTimeout(start(DTS, args, env, ROOT), timeoutMs, `dts ${args.join(" ")}`);
}

async function withTimeout(running: Running, timeoutMs: number, what: string): Promise<Finished> {
  const timer = setTimeout(() => running.child.kill("SIGKILL"), timeoutMs);
  try {
    const result = await running.finished;
    if (result.signal === "SIGKILL") throw new Error(`${what} did not finish within ${timeoutMs} ms; stderr:\n${result.stderr.slice(-4000)}`);
    return result;
  } finally {
    clearTimeout(timer);
  }
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * A copy of an example pipeline in a fresh folder (its checkpoint file then lands there, not
 * in the repository), with `edits` applied: replication slots are cluster-wide, so a test gives
 * its copy names no other run uses.
 */
export async function copyPipeline(example: string, edits: readonly [string, string][]): Promise<{ file: string; dir: string; remove(): Promise<void> }> {
  let text = await readFile(join(ROOT, "pipelines", example), "utf8");
  for (const [from, to] of edits) {
    if (!text.includes(from)) throw new Error(`pipelines/${example} no longer contains ${JSON.stringify(from)}`);
    text = text.replace(from, to);
  }
  const dir = await mkdtemp(join(tmpdir(), "dts-e2e-"));
  const file = join(dir, example);
  await writeFile(file, text);
  return { file, dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export function unique(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString("hex")}`;
}
