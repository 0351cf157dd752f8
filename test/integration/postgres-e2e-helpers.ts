/**
 * What the PostgreSQL end-to-end tests share besides running the CLIs (test/cli-process.ts):
 * copies of the example pipelines under names no other run uses.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../cli-process.js";

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
