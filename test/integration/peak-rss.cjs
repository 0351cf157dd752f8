// Preloaded into a node process (`node --require ./peak-rss.cjs ...`) by memory tests: when the
// process exits, its peak resident set size (VmHWM, in kB) is written to $DTS_PEAK_RSS_FILE.
"use strict";
const { readFileSync, writeFileSync } = require("node:fs");

process.on("exit", () => {
  const file = process.env.DTS_PEAK_RSS_FILE;
  if (!file) return;
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
  writeFileSync(file, `${match ? match[1] : Math.round(process.resourceUsage().maxRSS)}\n`);
});
