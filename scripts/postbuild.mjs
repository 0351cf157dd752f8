// tsc does not keep the executable bit; the bins must be runnable straight from dist/.
import { chmodSync, existsSync } from "node:fs";
for (const bin of ["dist/src/cli/dts.js", "dist/src/cli/dts-run.js"]) if (existsSync(bin)) chmodSync(bin, 0o755);
