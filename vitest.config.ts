import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests share real servers and databases; files run one at a time
    // so that they do not fight over replication slots and table names.
    fileParallelism: false,
    reporters: ["default", "./test/summary-reporter.ts"],
  },
});
