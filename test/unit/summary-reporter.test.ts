/**
 * The summary line (test/summary-reporter.ts) is what CI reads, so it must not call a run
 * whose servers were down a success: a vitest run of the fixture files in
 * test/fixtures/summary-reporter, in a child process, must end in the line that counts the
 * tests behind a failed `beforeAll` as failed and the ones skipped on purpose as skipped.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "../..");
const vitest = path.join(root, "node_modules/vitest/vitest.mjs");
const config = path.join(root, "test/fixtures/summary-reporter/vitest.config.ts");

it("counts the tests of a file or suite whose beforeAll failed as failed, not skipped", () => {
  // The child is a vitest run of its own, not a worker of this one.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("VITEST")));
  const child = spawnSync(process.execPath, [vitest, "run", "--config", config], { cwd: root, env, encoding: "utf8", timeout: 60_000 });
  const lines = child.stdout.trim().split("\n");
  expect(lines.at(-1), `${child.stdout}\n${child.stderr}`).toBe("1 passed, 4 failed, 3 skipped");
  expect(child.status).toBe(1);
});
