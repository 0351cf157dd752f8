/**
 * Prints the run's totals as one plain line, `N passed, N failed[, N skipped]`, after
 * vitest's own summary: the form CI reads to tell a run that tested something from one
 * that ran nothing.
 *
 * vitest reports the tests of a file or suite whose `beforeAll` threw (a server down) as
 * skipped; they were meant to run and did not, so they count as failed here. A test skipped
 * on purpose (`it.skip`, `it.todo`, or left out by `.only`) stays skipped, even there.
 */
import type { Reporter, TestCase, TestModule, TestSuite } from "vitest/node";

/** Whether a suite or file around `test` failed (a hook threw), which is why it did not run. */
function setupFailed(test: TestCase): boolean {
  for (let parent: TestSuite | TestModule = test.parent; ; parent = parent.parent) {
    if (parent.state() === "failed") return true;
    if (parent.type === "module") return false;
  }
}

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        const meantToRun = test.options.mode === "run" || test.options.mode === "only";
        if (state === "passed") passed++;
        else if (state === "failed") failed++;
        else if (meantToRun && setupFailed(test)) failed++;
        else skipped++;
      }
      // A file that failed to load has no tests but is a failure all the same.
      if (module.state() === "failed" && [...module.children.allTests()].length === 0) failed++;
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}\n`);
  }
}
